package useragent

import "testing"

func TestParse(t *testing.T) {
	tests := []struct {
		name, ua string
		want     Agent
		str      string
	}{
		{"Chrome on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.127 Safari/537.36",
			Agent{"Chrome", "126", "Windows"}, "Chrome 126 on Windows"},
		{"Edge on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87",
			Agent{"Edge", "126", "Windows"}, "Edge 126 on Windows"},
		{"Firefox on Linux", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
			Agent{"Firefox", "128", "Linux"}, "Firefox 128 on Linux"},
		{"Firefox on macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 Firefox/127.0",
			Agent{"Firefox", "127", "macOS"}, "Firefox 127 on macOS"},
		{"Safari on macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
			Agent{"Safari", "17", "macOS"}, "Safari 17 on macOS"},
		{"Safari on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
			Agent{"Safari", "17", "iOS"}, "Safari 17 on iOS"},
		{"Chrome on iPad", "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1",
			Agent{"Chrome", "126", "iOS"}, "Chrome 126 on iOS"},
		{"Firefox on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/127.0 Mobile/15E148 Safari/605.1.15",
			Agent{"Firefox", "127", "iOS"}, "Firefox 127 on iOS"},
		{"Chrome on Android", "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36",
			Agent{"Chrome", "126", "Android"}, "Chrome 126 on Android"},
		{"Opera on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36 OPR/111.0.0.0",
			Agent{"Opera", "111", "Windows"}, "Opera 111 on Windows"},
		{"Chromium on Linux", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chromium/125.0.6422.141 Chrome/125.0.6422.141 Safari/537.36",
			Agent{"Chromium", "125", "Linux"}, "Chromium 125 on Linux"},
		{"Chrome on ChromeOS", "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
			Agent{"Chrome", "126", "ChromeOS"}, "Chrome 126 on ChromeOS"},
		{"Android WebView without Version is not Safari", "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Safari/537.36",
			Agent{"", "", "Android"}, "Unknown browser on Android"},
		{"Go client", "Go-http-client/1.1", Agent{}, "Unknown browser"},
		{"curl", "curl/8.5.0", Agent{}, "Unknown browser"},
		{"empty", "", Agent{}, "Unknown browser"},
		{"version without digits", "Firefox/abc", Agent{"Firefox", "", ""}, "Firefox"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Parse(tt.ua)
			if got != tt.want {
				t.Errorf("Parse = %+v, want %+v", got, tt.want)
			}
			if s := got.String(); s != tt.str {
				t.Errorf("String = %q, want %q", s, tt.str)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add("Mozilla/5.0 (Windows NT 10.0) Chrome/126.0 Safari/537.36")
	f.Add("Version/")
	f.Fuzz(func(t *testing.T, ua string) {
		a := Parse(ua)
		if len(a.Version) > 6 {
			t.Errorf("version %q longer than 6 digits", a.Version)
		}
		_ = a.String()
	})
}
