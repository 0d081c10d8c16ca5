package ui

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

// golang.org/x/net/html is not a dependency of the module, so the tests read
// the rendered pages with encoding/xml in its lenient HTML mode (void
// elements auto-closed, HTML entities, attributes without values). Our
// templates emit well-formed markup, which that is enough for.

type node struct {
	tag      string // "" for text
	attrs    map[string]string
	text     string
	children []*node
}

func parseHTML(t *testing.T, body string) *node {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(body))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	root := &node{tag: "#document"}
	stack := []*node{root}
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("parse HTML: %v\n%s", err, body)
		}
		top := stack[len(stack)-1]
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &node{tag: strings.ToLower(tok.Name.Local), attrs: map[string]string{}}
			for _, a := range tok.Attr {
				n.attrs[strings.ToLower(a.Name.Local)] = a.Value
			}
			top.children = append(top.children, n)
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
		case xml.CharData:
			top.children = append(top.children, &node{text: string(tok)})
		}
	}
	return root
}

// all returns the elements under n with the given tag whose attributes
// include every key=value pair in want.
func (n *node) all(tag string, want ...string) []*node {
	var out []*node
	var walk func(*node)
	walk = func(c *node) {
		if c.tag == tag && c.has(want...) {
			out = append(out, c)
		}
		for _, k := range c.children {
			walk(k)
		}
	}
	for _, c := range n.children {
		walk(c)
	}
	return out
}

func (n *node) has(kv ...string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		v, ok := n.attrs[kv[i]]
		if !ok || v != kv[i+1] {
			return false
		}
	}
	return true
}

// one returns the single matching element, failing the test otherwise.
func (n *node) one(t *testing.T, tag string, want ...string) *node {
	t.Helper()
	got := n.all(tag, want...)
	if len(got) != 1 {
		t.Fatalf("want exactly one <%s %v>, found %d", tag, want, len(got))
	}
	return got[0]
}

// textContent is the element's text with whitespace collapsed.
func (n *node) textContent() string {
	var b strings.Builder
	var walk func(*node)
	walk = func(c *node) {
		if c.tag == "" {
			b.WriteString(c.text)
		}
		for _, k := range c.children {
			walk(k)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

func TestParseHTMLHelper(t *testing.T) {
	doc := parseHTML(t, `<!DOCTYPE html><html lang="en"><body><p class="a">x &amp; <b>y</b></p><input name="q" required><p>z</p></body></html>`)
	if got := doc.one(t, "p", "class", "a").textContent(); got != "x & y" {
		t.Errorf("text = %q, want %q", got, "x & y")
	}
	in := doc.one(t, "input", "name", "q")
	if _, ok := in.attrs["required"]; !ok {
		t.Errorf("valueless attribute lost: %v", in.attrs)
	}
	if n := len(doc.all("p")); n != 2 {
		t.Errorf("found %d <p>, want 2 (void <input> must not swallow the next element)", n)
	}
}
