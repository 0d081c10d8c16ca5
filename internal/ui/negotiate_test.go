package ui

import (
	"strings"
	"testing"
)

func TestNegotiate(t *testing.T) {
	tests := []struct {
		name, uiLocales, acceptLanguage, want string
	}{
		{"nothing", "", "", "en"},
		{"ui zh-Hans", "zh-Hans", "", "zh-Hans"},
		{"ui zh", "zh", "", "zh-Hans"},
		{"ui zh-CN", "zh-CN", "", "zh-Hans"},
		{"ui zh-SG", "zh-SG", "", "zh-Hans"},
		{"ui lower and upper case", "ZH-cn", "", "zh-Hans"},
		{"ui en-GB", "en-GB", "zh", "en"},
		{"ui unsupported falls to default", "fr", "", "en"},
		{"ui first supported in order", "fr zh-CN en", "", "zh-Hans"},
		{"ui order en before zh", "en zh", "", "en"},
		{"ui order zh before en", "zh en", "", "zh-Hans"},
		{"ui wins over header", "zh", "en", "zh-Hans"},
		{"ui en wins over header zh", "en", "zh-CN", "en"},
		{"ui unsupported falls to header", "fr de", "zh-CN", "zh-Hans"},
		{"ui garbage tags skipped", "!!! x_y-@ zh", "", "zh-Hans"},
		{"ui extra spaces", "   zh-Hans   ", "", "zh-Hans"},
		{"ui zh-TW still beats header", "zh-TW", "en", "zh-Hans"},
		{"header zh-CN browser", "", "zh-CN,zh;q=0.9,en;q=0.8", "zh-Hans"},
		{"header en-US browser", "", "en-US,en;q=0.9,zh-CN;q=0.8", "en"},
		{"header en-GB", "", "en-GB", "en"},
		{"header q order beats position", "", "en;q=0.5, zh;q=0.9", "zh-Hans"},
		{"header q=0 means not wanted", "", "fr, zh-CN;q=0", "en"},
		{"header unsupported only", "", "fr-FR, de;q=0.9", "en"},
		{"header unsupported then zh", "", "fr-FR, de;q=0.9, zh;q=0.1", "zh-Hans"},
		{"header wildcard then zh", "", "*, zh;q=0.5", "zh-Hans"},
		{"header malformed entry skipped", "", "zz-@@, zh;q=0.8", "zh-Hans"},
		{"header malformed q skips entry", "", "en;q=abc, zh;q=0.5", "zh-Hans"},
		{"header q above 1 skips entry", "", "en;q=2, zh;q=0.5", "zh-Hans"},
		{"header extra params ignored", "", "zh;foo=bar;q=0.9", "zh-Hans"},
		{"header zh-TW alone gets Simplified", "", "zh-TW", "zh-Hans"},
		{"header zh-Hant alone gets Simplified", "", "zh-Hant", "zh-Hans"},
		{"header zh-HK alone gets Simplified", "", "zh-HK", "zh-Hans"},
		{"header zh-TW then en gets English", "", "zh-TW, en;q=0.8", "en"},
		{"header Taiwan browser with zh", "", "zh-TW,zh;q=0.9,en-US;q=0.8,en;q=0.7", "zh-Hans"},
		{"header only commas", "", ",,,;;;", "en"},
		{"tags past the limit ignored", strings.Repeat("fr ", maxLanguageTags) + "zh", "", "en"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Negotiate(tt.uiLocales, tt.acceptLanguage).Tag(); got != tt.want {
				t.Errorf("Negotiate(%q, %q) = %q, want %q", tt.uiLocales, tt.acceptLanguage, got, tt.want)
			}
		})
	}
}

// FuzzNegotiate: both inputs come straight from the internet; whatever
// they hold, Negotiate returns a supported locale and does not panic.
func FuzzNegotiate(f *testing.F) {
	seeds := [][2]string{
		{"", ""},
		{"zh-Hans en", "en-US,en;q=0.9"},
		{"fr", "zh-CN,zh;q=0.9"},
		{"x-private-use-a-b-c", "*;q=0.1, de-CH-1996;q=0.5"},
		{"zh-Hant-TW-u-ca-chinese", "en;q=0.5;q=0.9"},
		{"\x00\xff", "en;q=, ;q=1.000, zh;q=0.0001"},
		{strings.Repeat("en-", 300), strings.Repeat("a,", 3000)},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, uiLocales, acceptLanguage string) {
		loc := Negotiate(uiLocales, acceptLanguage)
		if tag := loc.Tag(); tag != "en" && tag != "zh-Hans" {
			t.Fatalf("Negotiate(%q, %q) = %q", uiLocales, acceptLanguage, tag)
		}
	})
}
