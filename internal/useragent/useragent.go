package useragent

import "strings"

// Agent is what a User-Agent header says, as far as Parse understands it.
type Agent struct {
	// Browser is "Chrome", "Edge", "Firefox", "Safari", "Opera" or
	// "Chromium"; empty when not recognised.
	Browser string
	// Version is the browser's major version, e.g. "128"; may be empty.
	Version string
	// OS is "Windows", "macOS", "iOS", "Android", "Linux" or "ChromeOS";
	// empty when not recognised.
	OS string
}

// browsers are tried in order: the first token found wins. Order matters
// because browsers claim to be each other: Edge and Opera send "Chrome/"
// and "Safari/", Chrome sends "Safari/", Chromium may send "Chrome/".
var browsers = []struct {
	name   string
	tokens []string // "Name/" prefixes whose version follows the slash
}{
	{"Edge", []string{"Edg/", "EdgA/", "EdgiOS/", "Edge/"}},
	{"Opera", []string{"OPR/", "OPiOS/", "Opera/"}},
	{"Firefox", []string{"Firefox/", "FxiOS/"}},
	{"Chromium", []string{"Chromium/"}},
	{"Chrome", []string{"CriOS/", "Chrome/"}},
	// Safari's own version is in "Version/"; "Safari/" carries the WebKit
	// build. Only a UA with both is Safari (others send "Safari/" alone).
	{"Safari", []string{"Version/"}},
}

// systems are tried in order, for the same reason: Android and ChromeOS
// say "Linux", iPhones say "like Mac OS X".
var systems = []struct {
	name   string
	tokens []string
}{
	{"Windows", []string{"Windows"}},
	{"ChromeOS", []string{"CrOS"}},
	{"iOS", []string{"iPhone", "iPad", "iPod"}},
	{"Android", []string{"Android"}},
	{"macOS", []string{"Macintosh", "Mac OS X"}},
	{"Linux", []string{"Linux", "X11"}},
}

// Parse reads a User-Agent header. It never fails: what it does not
// recognise is left empty.
func Parse(ua string) Agent {
	var a Agent
	for _, b := range browsers {
		for _, tok := range b.tokens {
			i := strings.Index(ua, tok)
			if i < 0 {
				continue
			}
			if b.name == "Safari" && !strings.Contains(ua, "Safari/") {
				continue
			}
			a.Browser = b.name
			a.Version = major(ua[i+len(tok):])
			break
		}
		if a.Browser != "" {
			break
		}
	}
	for _, s := range systems {
		for _, tok := range s.tokens {
			if strings.Contains(ua, tok) {
				a.OS = s.name
				break
			}
		}
		if a.OS != "" {
			break
		}
	}
	return a
}

// major returns the leading digits of a version string ("128.0.1" → "128").
func major(v string) string {
	n := 0
	for n < len(v) && n < 6 && v[n] >= '0' && v[n] <= '9' {
		n++
	}
	return v[:n]
}

// BrowserLabel is the browser with its major version ("Firefox 128"), or
// "" when the browser is not recognised.
func (a Agent) BrowserLabel() string {
	if a.Browser == "" || a.Version == "" {
		return a.Browser
	}
	return a.Browser + " " + a.Version
}

// String describes the agent in English for logs and the CLI: "Firefox 128
// on Windows", "Safari", "Unknown browser on Linux", "Unknown browser".
func (a Agent) String() string {
	b := a.BrowserLabel()
	if b == "" {
		b = "Unknown browser"
	}
	if a.OS == "" {
		return b
	}
	return b + " on " + a.OS
}
