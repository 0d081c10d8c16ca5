package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"
)

// browserTimeout bounds the whole browser test: starting Chromium, every
// page and every wait. Nothing in it sleeps; it waits for events.
const browserTimeout = 60 * time.Second

// TestBrowserSignInConsentRedirect drives the authorization code flow in
// headless Chromium, so what a real browser enforces (the pages' CSP,
// form-action on the redirect after a form post, Origin and
// Sec-Fetch-Site on the form posts, cookies) is part of the test. The
// relying party around it is x/oauth2 and go-oidc, as in flow_test.go.
//
// With GATEHOUSE_SCREENSHOTS=dir it also saves screenshots of the pages
// for the docs.
func TestBrowserSignInConsentRedirect(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), browserTimeout)
	defer cancel()
	chrome := startChromium(ctx, t)
	shots := screenshotDir(t)

	s := newTestServer(t)
	user := s.createUser(t, "ada@example.com", testPassword)
	app := newCallbackApp(t)
	id, secret := s.registerClient(t, `{"client_name":"Ledger","redirect_uris":["`+app.RedirectURI+`"]}`)
	rp := newRP(t, s, id, secret, app.RedirectURI)

	t.Run("English sign-in, consent and redirect", func(t *testing.T) {
		tab := newChromeTab(t, chrome)
		ar := rp.authURL()

		tab.navigate(ar.URL, "/login")
		tab.wantAttr("html", "lang", "en")
		tab.wantText(`label[for="email"]`, "Email")
		tab.wantText(`label[for="password"]`, "Password")
		tab.screenshot(shots, "login.png")

		// A wrong password first: the form comes back with the error and
		// the email kept.
		tab.fill(byLabel("Email"), user.Email)
		tab.fill(byLabel("Password"), "not the password")
		if status := tab.submit(byButton("Sign in"), "/login"); status != http.StatusUnauthorized {
			t.Errorf("wrong password: status %d, want %d", status, http.StatusUnauthorized)
		}
		tab.wantText("#login-error", "Incorrect email or password.")
		if v := tab.value("#email"); v != user.Email {
			t.Errorf("email field after a wrong password = %q, want %q", v, user.Email)
		}
		tab.screenshot(shots, "login-error.png")

		tab.fill(byLabel("Password"), testPassword)
		tab.submit(byButton("Sign in"), "/consent")
		page := tab.text("main")
		for _, want := range []string{
			"Allow Ledger to access your account?",
			"Signed in as ada@example.com",
			"Ledger will be able to:",
			"Confirm your identity", "openid",
			"See your name and basic profile information", "profile",
			"See your email address", "email",
		} {
			if !strings.Contains(page, want) {
				t.Errorf("consent page lacks %q; it reads:\n%s", want, page)
			}
		}
		tab.screenshot(shots, "consent.png")

		// The consent form posts to Gatehouse, which redirects to the app:
		// the redirect Chrome checks against the page's form-action.
		tab.submit(byButton("Allow"), "/callback")
		tab.wait(chromedp.WaitVisible(chromedp.ID("signed-in")), "the app's callback page")
		landed := mustParseURL(t, tab.location())
		got := app.lastQuery(t)
		if landed.Query().Encode() != got.Encode() {
			t.Errorf("the browser is at %s but the app received %s", landed, got.Encode())
		}
		cb := mustParseURL(t, app.RedirectURI)
		cb.RawQuery = got.Encode()
		code := rp.codeFrom(ar, cb)

		tok, idt := rp.exchange(ar, code)
		if idt == nil || tok.AccessToken == "" {
			t.Fatal("no ID token or access token")
		}
		if idt.Subject != user.ID {
			t.Errorf("sub = %q, want %q", idt.Subject, user.ID)
		}
		var claims struct {
			Email string `json:"email"`
		}
		if err := idt.Claims(&claims); err != nil || claims.Email != user.Email {
			t.Errorf("email claim = %q (%v), want %q", claims.Email, err, user.Email)
		}
		tab.noConsoleProblems()
	})

	t.Run("Simplified Chinese sign-in page", func(t *testing.T) {
		zh := localeCatalog(t, "zh-Hans")
		tab := newChromeTab(t, chrome)
		ar := rp.authURL(oauth2.SetAuthURLParam("ui_locales", "zh-Hans"))

		tab.navigate(ar.URL, "/login")
		tab.wantAttr("html", "lang", "zh-Hans")
		tab.wantText(`button[type="submit"]`, zh["login.submit"])
		tab.wantText("h1", zh["login.title"])
		tab.wantText(`label[for="email"]`, zh["login.email"])
		tab.wantText(`label[for="password"]`, zh["login.password"])
		tab.wantText("p.lead", fmt.Sprintf(zh["login.continue_to"], "Ledger"))
		tab.screenshot(shots, "login-zh-Hans.png")
		tab.noConsoleProblems()
	})

	// The CSP check above is only worth something if a blocked redirect
	// does show up: a page whose form-action is 'self' and whose form
	// handler redirects to another origin must be reported.
	t.Run("a redirect blocked by form-action is reported", func(t *testing.T) {
		var mu sync.Mutex
		posts, arrivals := 0, 0
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			arrivals++
			mu.Unlock()
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, `<!DOCTYPE html><title>elsewhere</title><p>elsewhere</p>`)
		}))
		defer other.Close()
		strict := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				mu.Lock()
				posts++
				mu.Unlock()
				http.Redirect(w, r, other.URL+"/", http.StatusSeeOther)
				return
			}
			w.Header().Set("Content-Security-Policy", "default-src 'none'; img-src data:; form-action 'self'")
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, `<!DOCTYPE html><title>strict</title><link rel="icon" href="data:,">`+
				`<form method="post" action="/go"><button type="submit">Go</button></form>`)
		}))
		defer strict.Close()

		tab := newChromeTab(t, chrome)
		tab.navigate(strict.URL+"/", "/")
		// The first problem cancels the tab, possibly before the click
		// returns; that is the outcome wanted, not a failure.
		if err := chromedp.Do(tab.ctx, chromedp.Click(byButton("Go"))); err != nil && len(tab.console.problems()) == 0 {
			t.Fatalf("click Go: %v", err)
		}
		select {
		case <-tab.console.problem:
		case <-tab.ctx.Done():
		}
		p := tab.console.problems()
		if len(p) == 0 || !strings.Contains(strings.Join(p, "\n"), "Content Security Policy") {
			t.Fatalf("console problems = %q, want a Content Security Policy violation", p)
		}
		t.Logf("reported as: %s", p[0])
		mu.Lock()
		defer mu.Unlock()
		if posts != 1 || arrivals != 0 {
			t.Errorf("form posted %d times and reached the other origin %d times, want 1 and 0", posts, arrivals)
		}
	})
}

// startChromium starts one headless Chromium for the test, with a fresh
// profile, and returns its context; tabs are made from it with newChromeTab.
// Without Chromium the test is skipped, unless GATEHOUSE_REQUIRE_BROWSER=1
// (CI), where a missing browser must not pass silently.
func startChromium(ctx context.Context, t *testing.T) context.Context {
	t.Helper()
	path := "/usr/bin/chromium"
	if _, err := os.Stat(path); err != nil {
		if path, err = exec.LookPath("chromium"); err != nil {
			if os.Getenv("GATEHOUSE_REQUIRE_BROWSER") == "1" {
				t.Fatal("Chromium is not installed (no /usr/bin/chromium, none on PATH) and GATEHOUSE_REQUIRE_BROWSER=1")
			}
			t.Skip("Chromium is not installed (no /usr/bin/chromium, none on PATH); install it or set GATEHOUSE_REQUIRE_BROWSER=1 to make this a failure")
		}
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("lang", "en-US"),
		chromedp.WindowSize(1200, 900),
	)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	// Start the browser now, so a failure to start reads as one.
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start Chromium %s: %v", path, err)
	}
	return browser
}

// chromeTab is one page in its own browser context (its own cookies), with its
// console watched.
type chromeTab struct {
	t       *testing.T
	ctx     context.Context
	console *consoleWatch
}

func newChromeTab(t *testing.T, browser context.Context) *chromeTab {
	t.Helper()
	parent, cancelParent := context.WithCancelCause(browser)
	ctx, cancel := chromedp.NewContext(parent, chromedp.WithNewBrowserContext())
	t.Cleanup(func() {
		cancel()
		cancelParent(nil)
	})
	w := &consoleWatch{problem: make(chan struct{}), abort: cancelParent}
	if err := chromedp.Listen(ctx, w.event); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1200, 900, chromedp.EmulateScale(1))); err != nil {
		t.Fatalf("set the viewport: %v", err)
	}
	return &chromeTab{t: t, ctx: ctx, console: w}
}

// consoleWatch collects what the page reports on its console. Uncaught
// exceptions, console.error calls and anything about the Content Security
// Policy are problems: the pages have no scripts, so any of these means
// something was blocked or broken. The first problem also cancels the
// tab, so a blocked navigation fails the test at once instead of at the
// timeout.
type consoleWatch struct {
	mu      sync.Mutex
	list    []string
	other   []string
	problem chan struct{} // closed at the first problem
	abort   context.CancelCauseFunc
}

// event runs on chromedp's read loop; it must not block or call back.
func (w *consoleWatch) event(ev any) {
	var msg string
	var bad bool
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg, bad = fmt.Sprintf("exception: %s %s:%d", d.Text, d.URL, d.LineNumber+1), true
		if d.Exception != nil && d.Exception.Description != "" {
			msg += ": " + d.Exception.Description
		}
	case *runtime.EventConsoleAPICalled:
		var parts []string
		for _, a := range ev.Args {
			if a.Description != "" {
				parts = append(parts, a.Description)
			} else {
				parts = append(parts, string(a.Value))
			}
		}
		msg = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(parts, " "))
		bad = ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert
	case *log.EventEntryAdded:
		e := ev.Entry
		msg = fmt.Sprintf("log %s/%s: %s %s", e.Source, e.Level, e.Text, e.URL)
		bad = e.Level == log.EntryLevelError && e.Source != log.EntrySourceNetwork
	default:
		return
	}
	if strings.Contains(msg, "Content Security Policy") || strings.Contains(msg, "Content-Security-Policy") {
		bad = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !bad {
		w.other = append(w.other, msg)
		return
	}
	w.list = append(w.list, msg)
	if len(w.list) == 1 {
		close(w.problem)
		w.abort(errors.New("the browser reported: " + msg))
	}
}

func (w *consoleWatch) problems() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.list...)
}

func (w *consoleWatch) others() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.other...)
}

// fail reports a failed browser step, with the reason the tab was
// cancelled when the console watch did it.
func (b *chromeTab) fail(what string, err error) {
	b.t.Helper()
	if cause := context.Cause(b.ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		err = fmt.Errorf("%w (%v)", err, cause)
	}
	b.t.Fatalf("%s: %v\nconsole: %q", what, err, append(b.console.problems(), b.console.others()...))
}

func (b *chromeTab) wait(a chromedp.Action[chromedp.Void], what string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, a); err != nil {
		b.fail(what, err)
	}
}

// navigate opens rawURL, follows its redirects and checks the path of the
// page it ends on.
func (b *chromeTab) navigate(rawURL, wantPath string) {
	b.t.Helper()
	resp, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(rawURL))
	if err != nil {
		b.fail("navigate to "+rawURL, err)
	}
	b.wantPath(resp, wantPath)
}

// submit clicks a submit button, waits for the page that the form post
// leads to and returns its HTTP status.
func (b *chromeTab) submit(sel chromedp.Search, wantPath string) int64 {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Click(sel))
	if err != nil {
		b.fail("click "+string(sel), err)
	}
	b.wantPath(resp, wantPath)
	return resp.Status
}

func (b *chromeTab) wantPath(resp *network.Response, want string) {
	b.t.Helper()
	if resp == nil {
		b.fail("load "+want, errors.New("no document response"))
	}
	u, err := url.Parse(resp.URL)
	if err != nil || u.Path != want {
		b.fail("load "+want, fmt.Errorf("ended at %d %s", resp.Status, resp.URL))
	}
}

func (b *chromeTab) location() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.fail("read the location", err)
	}
	return loc
}

func (b *chromeTab) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.fail("read "+sel, err)
	}
	return s
}

func (b *chromeTab) value(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		b.fail("read the value of "+sel, err)
	}
	return s
}

func (b *chromeTab) wantText(sel, want string) {
	b.t.Helper()
	if got := strings.TrimSpace(b.text(sel)); got != want {
		b.t.Errorf("%s reads %q, want %q", sel, got, want)
	}
}

func (b *chromeTab) wantAttr(sel, name, want string) {
	b.t.Helper()
	got, err := chromedp.Run(b.ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
	if err != nil {
		b.fail("read "+sel+" "+name, err)
	}
	if !got.Exists || got.Value != want {
		b.t.Errorf("<%s %s=%q>, want %q", sel, name, got.Value, want)
	}
}

// fill types into an empty field as a person would.
func (b *chromeTab) fill(sel chromedp.Search, text string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.SendKeys(sel, text)); err != nil {
		b.fail("fill "+string(sel), err)
	}
	got, err := chromedp.Run(b.ctx, chromedp.Value(sel))
	if err != nil {
		b.fail("read back "+string(sel), err)
	}
	if got != text {
		b.t.Fatalf("%s holds %q after typing %q", sel, got, text)
	}
}

// screenshot saves the whole page as dir/name when dir is set.
func (b *chromeTab) screenshot(dir, name string) {
	b.t.Helper()
	if dir == "" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.fail("screenshot "+name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("saved %s (%d bytes)", filepath.Join(dir, name), len(png))
}

func (b *chromeTab) noConsoleProblems() {
	b.t.Helper()
	for _, p := range b.console.problems() {
		b.t.Errorf("browser console: %s", p)
	}
	for _, o := range b.console.others() {
		b.t.Logf("browser console (not a failure): %s", o)
	}
}

// byLabel finds the input that the label with this text is for, so the
// test also checks that the label is tied to its field.
func byLabel(text string) chromedp.Search {
	return chromedp.Search(fmt.Sprintf(`//input[@id=//label[normalize-space(.)=%q]/@for]`, text))
}

// byButton finds a button by its text.
func byButton(text string) chromedp.Search {
	return chromedp.Search(fmt.Sprintf(`//button[normalize-space(.)=%q]`, text))
}

// screenshotDir is GATEHOUSE_SCREENSHOTS, created, or "" for none.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("GATEHOUSE_SCREENSHOTS")
	if dir == "" {
		return ""
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// localeCatalog reads a message catalog from web/locales.
func localeCatalog(t *testing.T, lang string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "web", "locales", lang+".json"))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s.json: %v", lang, err)
	}
	return m
}

// callbackApp is the relying party's redirect URI: it records the
// authorization response it receives and shows a small page.
type callbackApp struct {
	RedirectURI string
	mu          sync.Mutex
	queries     []url.Values
}

func newCallbackApp(t *testing.T) *callbackApp {
	t.Helper()
	a := &callbackApp{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.queries = append(a.queries, r.URL.Query())
		a.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Ledger</title><link rel="icon" href="data:,"></head>`+
			`<body><p id="signed-in">Ledger received the authorization response.</p></body></html>`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	a.RedirectURI = srv.URL + "/callback"
	return a
}

// lastQuery is the query of the one request the callback received.
func (a *callbackApp) lastQuery(t *testing.T) url.Values {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.queries) != 1 {
		t.Fatalf("the app's callback was called %d times, want once", len(a.queries))
	}
	return a.queries[0]
}

// TestBrowserAccountAndLogout drives the account page and RP-initiated
// logout in headless Chromium: the account page shows this browser's
// session; a logout request carrying the ID token of an earlier session
// is not trusted, so the person confirms on Gatehouse's page, whose form
// post is then redirected to the app's registered post-logout URI, the
// redirect Chrome checks against the page's form-action.
func TestBrowserAccountAndLogout(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), browserTimeout)
	defer cancel()
	chrome := startChromium(ctx, t)
	shots := screenshotDir(t)

	s := newTestServer(t)
	user := s.createUser(t, "ada@example.com", testPassword)
	app, afterLogout := newCallbackApp(t), newCallbackApp(t)
	id, secret := s.registerClient(t, `{"client_name":"Ledger","redirect_uris":["`+app.RedirectURI+`"],`+
		`"post_logout_redirect_uris":["`+afterLogout.RedirectURI+`"]}`)
	rp := newRP(t, s, id, secret, app.RedirectURI)
	tab := newChromeTab(t, chrome)

	// Signed in through the app: an ID token for the first session.
	ar := rp.authURL()
	tab.navigate(ar.URL, "/login")
	tab.fill(byLabel("Email"), user.Email)
	tab.fill(byLabel("Password"), testPassword)
	tab.submit(byButton("Sign in"), "/consent")
	tab.submit(byButton("Allow"), "/callback")
	cb := mustParseURL(t, app.RedirectURI)
	cb.RawQuery = app.lastQuery(t).Encode()
	tok, idt := rp.exchange(ar, rp.codeFrom(ar, cb))
	hint := tok.Extra("id_token").(string)

	// Signing in again at Gatehouse itself replaces that session.
	tab.navigate(s.Issuer+"/login", "/login")
	tab.fill(byLabel("Email"), user.Email)
	tab.fill(byLabel("Password"), testPassword)
	tab.submit(byButton("Sign in"), "/")

	tab.navigate(s.Issuer+"/account", "/account")
	page := tab.text("main")
	for _, want := range []string{"Your account", "Signed in as " + user.Name, "This device", "Sign out", "Apps with access to your account", "Ledger", "Revoke access"} {
		if !strings.Contains(page, want) {
			t.Errorf("account page lacks %q; it reads:\n%q", want, page)
		}
	}
	if n := strings.Count(page, "This device"); n != 1 {
		t.Errorf("account page marks %d sessions as this device, want 1", n)
	}
	tab.screenshot(shots, "account.png")

	// The hint names the replaced session: Gatehouse asks.
	logout := s.Issuer + "/logout?" + url.Values{
		"id_token_hint": {hint}, "post_logout_redirect_uri": {afterLogout.RedirectURI}, "state": {"bye-1"},
	}.Encode()
	tab.navigate(logout, "/logout")
	tab.wantText("h1", "Sign out of Gatehouse?")
	tab.wantText("p.lead", "Ledger asked to sign you out.")
	tab.screenshot(shots, "logout.png")
	tab.submit(byButton("Sign out"), "/callback")
	if got := afterLogout.lastQuery(t).Get("state"); got != "bye-1" {
		t.Errorf("post-logout redirect state = %q, want bye-1", got)
	}
	// The browser's session has ended: the account page wants a sign-in.
	tab.navigate(s.Issuer+"/account", "/login")
	var claims struct {
		SID string `json:"sid"`
	}
	if err := idt.Claims(&claims); err != nil || claims.SID == "" {
		t.Errorf("the ID token has no sid (%v)", err)
	}
	tab.noConsoleProblems()
}
