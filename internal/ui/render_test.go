package ui

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func newRenderer(t *testing.T) (*Renderer, *bytes.Buffer) {
	t.Helper()
	r, err := NewRenderer("")
	if err != nil {
		t.Fatalf("NewRenderer: %v", err)
	}
	var logs bytes.Buffer
	r.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	return r, &logs
}

func render(t *testing.T, r *Renderer, status int, loc Locale, p Page) (*httptest.ResponseRecorder, *node) {
	t.Helper()
	w := httptest.NewRecorder()
	r.Render(w, status, loc, p)
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body:\n%s", w.Code, status, w.Body)
	}
	return w, parseHTML(t, w.Body.String())
}

var (
	en = Negotiate("en", "")
	zh = Negotiate("zh-Hans", "")
)

// checkCommon checks what every page must have: the language, one <h1>, a
// <main>, a label for each visible input, no scripts or inline styles.
func checkCommon(t *testing.T, w *httptest.ResponseRecorder, doc *node, loc Locale) {
	t.Helper()
	if got := doc.one(t, "html").attrs["lang"]; got != loc.Tag() {
		t.Errorf("<html lang> = %q, want %q", got, loc.Tag())
	}
	if got := w.Header().Get("Content-Language"); got != loc.Tag() {
		t.Errorf("Content-Language = %q, want %q", got, loc.Tag())
	}
	doc.one(t, "h1")
	doc.one(t, "main")
	doc.one(t, "title")
	doc.one(t, "link", "rel", "stylesheet")
	if n := len(doc.all("script")) + len(doc.all("style")); n != 0 {
		t.Errorf("page has %d <script>/<style> elements; the CSP forbids them", n)
	}
	if strings.Contains(w.Body.String(), " style=") {
		t.Error("page has an inline style attribute; the CSP forbids it")
	}
	for _, in := range doc.all("input") {
		if in.attrs["type"] == "hidden" {
			continue
		}
		id := in.attrs["id"]
		if id == "" || len(doc.all("label", "for", id)) != 1 {
			t.Errorf("input %q has no <label for>", in.attrs["name"])
		}
	}
}

func hidden(t *testing.T, form *node, name string) string {
	t.Helper()
	return form.one(t, "input", "type", "hidden", "name", name).attrs["value"]
}

func TestLoginPage(t *testing.T) {
	r, _ := newRenderer(t)
	tests := []struct {
		name                                  string
		loc                                   Locale
		page                                  LoginPage
		email, password, submit, errMsg, lead string
	}{
		{
			name:  "en plain",
			loc:   en,
			page:  LoginPage{CSRFToken: "tok-1"},
			email: "Email", password: "Password", submit: "Sign in",
		},
		{
			name: "en with client, hint and error",
			loc:  en,
			page: LoginPage{CSRFToken: "tok-2", AuthRequest: "ar-2", Email: "ann@example.com",
				ErrorKey: "login.error.invalid", ClientName: "Acme", RedirectOrigin: "https://acme.example"},
			email: "Email", password: "Password", submit: "Sign in",
			errMsg: "Incorrect email or password.", lead: "to continue to Acme",
		},
		{
			name:  "zh plain",
			loc:   zh,
			page:  LoginPage{CSRFToken: "tok-3", AuthRequest: "ar-3"},
			email: "电子邮箱", password: "密码", submit: "登录",
		},
		{
			name: "zh with client, hint and error",
			loc:  zh,
			page: LoginPage{CSRFToken: "tok-4", AuthRequest: "ar-4", Email: "安@example.com",
				ErrorKey: "login.error.invalid", ClientName: "Acme"},
			email: "电子邮箱", password: "密码", submit: "登录",
			errMsg: "邮箱或密码不正确。", lead: "以继续使用 Acme",
		},
		{
			name:  "en throttled: the wait replaces the error",
			loc:   en,
			page:  LoginPage{CSRFToken: "tok-5", Email: "ann@example.com", ErrorKey: "login.error.invalid", RetryAfter: 14*time.Minute + time.Second},
			email: "Email", password: "Password", submit: "Sign in",
			errMsg: "Too many sign-in attempts. Try again in 15 minutes.",
		},
		{
			name:  "zh throttled",
			loc:   zh,
			page:  LoginPage{CSRFToken: "tok-6", RetryAfter: 16 * time.Second},
			email: "电子邮箱", password: "密码", submit: "登录",
			errMsg: "登录尝试次数过多，请 16 秒后再试。",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, doc := render(t, r, http.StatusOK, tt.loc, tt.page)
			checkCommon(t, w, doc, tt.loc)

			form := doc.one(t, "form")
			if !form.has("method", "post", "action", "/login") {
				t.Errorf("form attrs = %v, want POST /login", form.attrs)
			}
			if got := hidden(t, form, "csrf_token"); got != tt.page.CSRFToken {
				t.Errorf("csrf_token = %q, want %q", got, tt.page.CSRFToken)
			}
			if got := hidden(t, form, "ar"); got != tt.page.AuthRequest {
				t.Errorf("ar = %q, want %q", got, tt.page.AuthRequest)
			}
			email := form.one(t, "input", "name", "email", "type", "email", "autocomplete", "username")
			if got := email.attrs["value"]; got != tt.page.Email {
				t.Errorf("email value = %q, want %q", got, tt.page.Email)
			}
			pw := form.one(t, "input", "name", "password", "type", "password", "autocomplete", "current-password")
			if _, ok := pw.attrs["value"]; ok {
				t.Error("the password field must never be prefilled")
			}
			if got := doc.one(t, "label", "for", email.attrs["id"]).textContent(); got != tt.email {
				t.Errorf("email label = %q, want %q", got, tt.email)
			}
			if got := doc.one(t, "label", "for", pw.attrs["id"]).textContent(); got != tt.password {
				t.Errorf("password label = %q, want %q", got, tt.password)
			}
			if got := form.one(t, "button", "type", "submit").textContent(); got != tt.submit {
				t.Errorf("button = %q, want %q", got, tt.submit)
			}

			alerts := doc.all("div", "role", "alert")
			switch {
			case tt.errMsg == "" && len(alerts) != 0:
				t.Errorf("unexpected alert %q", alerts[0].textContent())
			case tt.errMsg != "" && (len(alerts) != 1 || alerts[0].textContent() != tt.errMsg):
				t.Errorf("alerts = %d, want one saying %q", len(alerts), tt.errMsg)
			}
			leads := doc.all("p", "class", "lead")
			switch {
			case tt.lead == "" && len(leads) != 0:
				t.Errorf("unexpected client line %q", leads[0].textContent())
			case tt.lead != "" && (len(leads) != 1 || leads[0].textContent() != tt.lead):
				t.Errorf("client lines = %d, want one saying %q", len(leads), tt.lead)
			}
		})
	}
}

func TestThrottledMessage(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{time.Millisecond, "Too many sign-in attempts. Try again in 1 second."},
		{time.Second, "Too many sign-in attempts. Try again in 1 second."},
		{time.Second + time.Millisecond, "Too many sign-in attempts. Try again in 2 seconds."},
		{59 * time.Second, "Too many sign-in attempts. Try again in 59 seconds."},
		{time.Minute, "Too many sign-in attempts. Try again in 1 minute."},
		{time.Minute + time.Second, "Too many sign-in attempts. Try again in 2 minutes."},
		{15 * time.Minute, "Too many sign-in attempts. Try again in 15 minutes."},
	}
	for _, tt := range tests {
		t.Run(tt.d.String(), func(t *testing.T) {
			key, args := throttledMessage(tt.d)
			if got := en.T(key, args...); got != tt.want {
				t.Errorf("%v: %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}

func TestConsentPage(t *testing.T) {
	r, _ := newRenderer(t)
	page := ConsentPage{
		CSRFToken: "tok", AuthRequest: "ar-9", ClientName: "Acme", ClientURI: "https://acme.example/about",
		UserEmail: "ann@example.com", RedirectOrigin: "https://acme.example",
		Scopes: []string{"openid", "profile", "email", "offline_access", "payments:write", "openid", ""},
	}
	tests := []struct {
		name         string
		loc          Locale
		title        string
		scopes       []string // text of each <li>, in order
		allow, deny  string
		signedInText string
	}{
		{
			name:  "en",
			loc:   en,
			title: "Allow Acme to access your account?",
			scopes: []string{
				"Confirm your identity openid",
				"See your name and basic profile information profile",
				"See your email address email",
				"Keep this access when you are not using the app offline_access",
				"payments:write",
			},
			allow: "Allow", deny: "Deny", signedInText: "Signed in as ann@example.com",
		},
		{
			name:  "zh",
			loc:   zh,
			title: "允许 Acme 访问您的账号？",
			scopes: []string{
				"确认您的身份 openid",
				"查看您的姓名和基本个人资料 profile",
				"查看您的电子邮箱地址 email",
				"在您未使用该应用时继续保留上述访问权限 offline_access",
				"payments:write",
			},
			allow: "允许", deny: "拒绝", signedInText: "当前登录账号：ann@example.com",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, doc := render(t, r, http.StatusOK, tt.loc, page)
			checkCommon(t, w, doc, tt.loc)
			if got := doc.one(t, "h1").textContent(); got != tt.title {
				t.Errorf("h1 = %q, want %q", got, tt.title)
			}
			if got := doc.one(t, "p", "class", "account").textContent(); got != tt.signedInText {
				t.Errorf("account line = %q, want %q", got, tt.signedInText)
			}
			doc.one(t, "a", "href", page.ClientURI)

			var got []string
			for _, li := range doc.one(t, "ul", "class", "scopes").all("li") {
				// Description and scope name are separate blocks; join them.
				var parts []string
				for _, c := range li.children {
					parts = append(parts, c.textContent())
				}
				got = append(got, strings.Join(parts, " "))
			}
			if strings.Join(got, "\n") != strings.Join(tt.scopes, "\n") {
				t.Errorf("scopes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.scopes, "\n"))
			}

			form := doc.one(t, "form")
			if !form.has("method", "post", "action", "/consent") {
				t.Errorf("form attrs = %v, want POST /consent", form.attrs)
			}
			if got := hidden(t, form, "csrf_token"); got != "tok" {
				t.Errorf("csrf_token = %q", got)
			}
			if got := hidden(t, form, "ar"); got != "ar-9" {
				t.Errorf("ar = %q", got)
			}
			if got := form.one(t, "button", "type", "submit", "name", "decision", "value", "allow").textContent(); got != tt.allow {
				t.Errorf("allow button = %q, want %q", got, tt.allow)
			}
			if got := form.one(t, "button", "type", "submit", "name", "decision", "value", "deny").textContent(); got != tt.deny {
				t.Errorf("deny button = %q, want %q", got, tt.deny)
			}
			if n := len(form.all("button")); n != 2 {
				t.Errorf("%d buttons, want 2", n)
			}
		})
	}
}

func TestErrorPage(t *testing.T) {
	r, _ := newRenderer(t)
	detail := "invalid_request: redirect_uri is not registered for this client"
	tests := []struct {
		name        string
		loc         Locale
		page        ErrorPage
		title, msg  string
		wantDetails bool
	}{
		{"en defaults", en, ErrorPage{}, "Something went wrong", "We could not complete your request.", false},
		{"zh defaults", zh, ErrorPage{}, "出错了", "无法完成您的请求。", false},
		{"en keys and detail", en, ErrorPage{TitleKey: "error.invalid_client.title", MessageKey: "error.invalid_client.message", Detail: detail},
			"Unknown application", catalogs[0]["error.invalid_client.message"], true},
		{"zh keys and detail", zh, ErrorPage{TitleKey: "error.bad_request.title", MessageKey: "error.bad_request.message", Detail: detail},
			"请求无效", catalogs[1]["error.bad_request.message"], true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, doc := render(t, r, http.StatusBadRequest, tt.loc, tt.page)
			checkCommon(t, w, doc, tt.loc)
			if got := doc.one(t, "h1").textContent(); got != tt.title {
				t.Errorf("h1 = %q, want %q", got, tt.title)
			}
			if got := doc.one(t, "title").textContent(); !strings.HasPrefix(got, tt.title) {
				t.Errorf("<title> = %q, want it to start with %q", got, tt.title)
			}
			if !strings.Contains(doc.one(t, "main").textContent(), tt.msg) {
				t.Errorf("message %q not shown", tt.msg)
			}
			codes := doc.all("code")
			if !tt.wantDetails {
				if len(codes) != 0 {
					t.Errorf("unexpected detail %q", codes[0].textContent())
				}
				return
			}
			if len(codes) != 1 || codes[0].textContent() != detail {
				t.Errorf("detail not shown verbatim: %d <code>", len(codes))
			}
		})
	}
}

func TestHomePage(t *testing.T) {
	r, _ := newRenderer(t)
	tests := []struct {
		name       string
		loc        Locale
		page       HomePage
		want       []string // texts that must appear in <main>
		wantSignIn string   // text of the /login link; "" for none
	}{
		{"en signed out", en, HomePage{IssuerURL: "https://id.example/"}, []string{"Gatehouse", "You are not signed in."}, "Sign in"},
		{"zh signed out", zh, HomePage{}, []string{"您尚未登录。"}, "登录"},
		{"en signed in", en, HomePage{SignedIn: true, Name: "Ann Lee", Email: "ann@example.com", CSRFToken: "tok"}, []string{"Signed in as Ann Lee", "ann@example.com"}, ""},
		{"zh signed in without name", zh, HomePage{SignedIn: true, Email: "ann@example.com", CSRFToken: "tok2"}, []string{"当前登录账号：ann@example.com"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, doc := render(t, r, http.StatusOK, tt.loc, tt.page)
			checkCommon(t, w, doc, tt.loc)
			text := doc.one(t, "main").textContent()
			for _, s := range tt.want {
				if !strings.Contains(text, s) {
					t.Errorf("page lacks %q:\n%s", s, text)
				}
			}
			forms := doc.all("form")
			if tt.page.SignedIn {
				if len(forms) != 1 || !forms[0].has("method", "post", "action", "/logout/confirm") {
					t.Fatal("signed-in page lacks the sign-out form")
				}
				if got := hidden(t, forms[0], "csrf_token"); got != tt.page.CSRFToken {
					t.Errorf("sign-out csrf_token = %q, want %q", got, tt.page.CSRFToken)
				}
			} else if len(forms) != 0 {
				t.Error("signed-out page offers to sign out")
			}
			links := doc.all("a", "href", "/login")
			switch {
			case tt.wantSignIn == "" && len(links) != 0:
				t.Error("signed-in page offers to sign in")
			case tt.wantSignIn != "" && (len(links) != 1 || links[0].textContent() != tt.wantSignIn):
				t.Errorf("want one /login link saying %q", tt.wantSignIn)
			}
			if tt.page.IssuerURL != "" {
				doc.one(t, "a", "href", "https://id.example/.well-known/openid-configuration")
			}
		})
	}
}

// Values from users and clients must come out as text, whatever they hold.
func TestRenderEscapesUserValues(t *testing.T) {
	r, _ := newRenderer(t)
	const (
		script = `<script>alert(1)</script>`
		attr   = `"><img src=x onerror=alert(1)>`
	)
	tests := []struct {
		name string
		page Page
		// texts that must appear verbatim as text
		texts []string
	}{
		{"login", LoginPage{ClientName: script, Email: attr, AuthRequest: attr, CSRFToken: attr}, []string{"to continue to " + script}},
		{"consent", ConsentPage{ClientName: script, UserEmail: attr, ClientURI: "javascript:alert(1)", Scopes: []string{script}, AuthRequest: attr},
			[]string{"Allow " + script + " to access your account?", "Signed in as " + attr}},
		{"error", ErrorPage{Detail: `</code></pre>` + script}, []string{`</code></pre>` + script}},
		{"home", HomePage{SignedIn: true, Name: script, Email: attr, IssuerURL: `javascript:alert(1)//`}, []string{"Signed in as " + script, attr}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, doc := render(t, r, http.StatusOK, en, tt.page)
			body := w.Body.String()
			for _, bad := range []string{"<script", "<img"} {
				if strings.Contains(body, bad) {
					t.Errorf("body contains %q unescaped", bad)
				}
			}
			// A javascript: URL may show as text, never as a link.
			for _, a := range doc.all("a") {
				if strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.attrs["href"])), "javascript:") {
					t.Errorf("link to %q", a.attrs["href"])
				}
			}
			if n := len(doc.all("script")) + len(doc.all("img")); n != 0 {
				t.Errorf("%d injected elements", n)
			}
			main := doc.one(t, "main").textContent()
			for _, s := range tt.texts {
				if !strings.Contains(main, s) {
					t.Errorf("%q not shown as text in:\n%s", s, main)
				}
			}
			for _, in := range doc.all("input") {
				if v, ok := in.attrs["value"]; ok && v != "" && v != attr {
					t.Errorf("input %q value = %q, want the raw value back", in.attrs["name"], v)
				}
			}
		})
	}
}

func TestRenderHeaders(t *testing.T) {
	r, logs := newRenderer(t)
	const base = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'"
	const tail = "; frame-ancestors 'none'; base-uri 'none'"
	tests := []struct {
		name    string
		page    Page
		status  int
		wantCSP string
		wantLog bool // an origin was refused
	}{
		{"login without origin", LoginPage{}, 200, base + tail, false},
		{"login with origin", LoginPage{RedirectOrigin: "https://app.example.com"}, 200, base + " https://app.example.com" + tail, false},
		{"consent with URL reduced to origin", ConsentPage{RedirectOrigin: "https://App.Example.com:8443/cb?x=1#f"}, 200, base + " https://app.example.com:8443" + tail, false},
		{"loopback", ConsentPage{RedirectOrigin: "http://127.0.0.1:51234"}, 200, base + " http://127.0.0.1:51234" + tail, false},
		{"native app scheme", LoginPage{RedirectOrigin: "com.example.app:/oauth2redirect"}, 200, base + " com.example.app:" + tail, false},
		{"pointer page", &LoginPage{RedirectOrigin: "https://p.example"}, 200, base + " https://p.example" + tail, false},
		{"injection refused", LoginPage{RedirectOrigin: "https://evil.example; script-src *"}, 200, base + tail, true},
		{"keyword refused", ConsentPage{RedirectOrigin: "'unsafe-inline'"}, 200, base + tail, true},
		{"javascript refused", LoginPage{RedirectOrigin: "javascript:alert(1)"}, 200, base + tail, true},
		{"userinfo refused", LoginPage{RedirectOrigin: "https://u:p@app.example"}, 200, base + tail, true},
		{"error page status", ErrorPage{}, 404, base + tail, false},
		{"home", HomePage{}, 200, base + tail, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			w, _ := render(t, r, tt.status, en, tt.page)
			h := w.Header()
			want := map[string]string{
				"Content-Type":            "text/html; charset=utf-8",
				"Content-Language":        "en",
				"Cache-Control":           "no-store",
				"X-Frame-Options":         "DENY",
				"X-Content-Type-Options":  "nosniff",
				"Content-Security-Policy": tt.wantCSP,
			}
			for k, v := range want {
				if got := h.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Error("CSP lacks frame-ancestors 'none'")
			}
			if got := logs.Len() > 0; got != tt.wantLog {
				t.Errorf("logged = %v, want %v: %s", got, tt.wantLog, logs)
			}
		})
	}
}

func TestRenderFailureIsAPlain500(t *testing.T) {
	r, logs := newRenderer(t)
	tests := []struct {
		name string
		page Page
	}{
		{"nil page", nil},
		{"nil pointer page", (*ConsentPage)(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			w := httptest.NewRecorder()
			r.Render(w, http.StatusOK, en, tt.page)
			if w.Code != http.StatusInternalServerError {
				t.Errorf("status = %d, want 500", w.Code)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type = %q, want text/plain", ct)
			}
			if strings.Contains(w.Body.String(), "<") {
				t.Errorf("body has markup: %q", w.Body)
			}
			if !strings.Contains(logs.String(), "render") {
				t.Errorf("error not logged: %q", logs)
			}
		})
	}
}

func TestRendererLinksServedStylesheet(t *testing.T) {
	r, _ := newRenderer(t)
	_, doc := render(t, r, http.StatusOK, en, HomePage{})
	href := doc.one(t, "link", "rel", "stylesheet").attrs["href"]
	if !strings.HasPrefix(href, "/static/gatehouse.css?v=") {
		t.Fatalf("stylesheet href = %q", href)
	}
	w := httptest.NewRecorder()
	StaticHandler().ServeHTTP(w, httptest.NewRequest("GET", href, nil))
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/css") {
		t.Errorf("GET %s: %d %s", href, w.Code, w.Header().Get("Content-Type"))
	}
}

func TestLogoutPage(t *testing.T) {
	r, _ := newRenderer(t)
	full := LogoutPage{
		CSRFToken: "tok", ClientName: "Acme", UserEmail: "ann@example.com",
		IDTokenHint: "eyJ.hint.sig", ClientID: "acme", PostLogoutRedirectURI: "https://acme.example/bye?x=1",
		State: `s"<&`, UILocales: "zh-Hans en", RedirectOrigin: "https://acme.example",
	}
	tests := []struct {
		name      string
		loc       Locale
		page      LogoutPage
		title     string
		lead      string // "" for none
		submit    string
		wantEcho  map[string]string // hidden fields besides csrf_token
		formExtra string            // form-action origin in the CSP, "" for none
	}{
		{"en, everything", en, full, "Sign out of Gatehouse?", "Acme asked to sign you out.", "Sign out",
			map[string]string{"id_token_hint": "eyJ.hint.sig", "client_id": "acme",
				"post_logout_redirect_uri": "https://acme.example/bye?x=1", "state": `s"<&`, "ui_locales": "zh-Hans en"},
			"https://acme.example"},
		{"zh, bare", zh, LogoutPage{CSRFToken: "tok"}, "要退出 Gatehouse 吗？", "", "退出登录", map[string]string{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, doc := render(t, r, http.StatusOK, tt.loc, tt.page)
			checkCommon(t, w, doc, tt.loc)
			if got := doc.one(t, "h1").textContent(); got != tt.title {
				t.Errorf("h1 = %q, want %q", got, tt.title)
			}
			leads := doc.all("p", "class", "lead")
			switch {
			case tt.lead == "" && len(leads) != 0:
				t.Errorf("unexpected lead %q", leads[0].textContent())
			case tt.lead != "" && (len(leads) != 1 || leads[0].textContent() != tt.lead):
				t.Errorf("want lead %q", tt.lead)
			}
			form := doc.one(t, "form")
			if !form.has("method", "post", "action", "/logout/confirm") {
				t.Errorf("form attrs = %v, want POST /logout/confirm", form.attrs)
			}
			if got := hidden(t, form, "csrf_token"); got != "tok" {
				t.Errorf("csrf_token = %q", got)
			}
			hiddenInputs := form.all("input", "type", "hidden")
			if len(hiddenInputs) != 1+len(tt.wantEcho) {
				t.Errorf("%d hidden inputs, want %d", len(hiddenInputs), 1+len(tt.wantEcho))
			}
			for name, want := range tt.wantEcho {
				if got := hidden(t, form, name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			if got := form.one(t, "button", "type", "submit").textContent(); got != tt.submit {
				t.Errorf("submit = %q, want %q", got, tt.submit)
			}
			form.one(t, "a", "href", "/")
			csp := w.Header().Get("Content-Security-Policy")
			if tt.formExtra != "" && !strings.Contains(csp, tt.formExtra) {
				t.Errorf("CSP %q does not allow the post-logout redirect to %s", csp, tt.formExtra)
			}
		})
	}
}

func TestSignedOutPage(t *testing.T) {
	r, _ := newRenderer(t)
	for _, tt := range []struct {
		name        string
		loc         Locale
		title, link string
	}{
		{"en", en, "You are signed out", "Sign in"},
		{"zh", zh, "您已退出登录", "登录"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w, doc := render(t, r, http.StatusOK, tt.loc, SignedOutPage{})
			checkCommon(t, w, doc, tt.loc)
			if got := doc.one(t, "h1").textContent(); got != tt.title {
				t.Errorf("h1 = %q, want %q", got, tt.title)
			}
			if got := doc.one(t, "a", "href", "/login").textContent(); got != tt.link {
				t.Errorf("link = %q, want %q", got, tt.link)
			}
			if n := len(doc.all("form")); n != 0 {
				t.Errorf("%d forms on the signed-out page", n)
			}
		})
	}
}
