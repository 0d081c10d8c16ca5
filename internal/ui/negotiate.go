package ui

import (
	"slices"
	"strconv"
	"strings"

	"golang.org/x/text/language"
)

// matcher picks among localeTags; its order must match them.
var matcher = language.NewMatcher([]language.Tag{language.English, language.SimplifiedChinese})

// Limits on what Negotiate looks at. Both headers come from the internet;
// real browsers send a handful of tags.
const (
	maxLanguageInput = 1024 // bytes of each of ui_locales and Accept-Language
	maxLanguageTags  = 16
)

// Negotiate picks the page language.
//
// uiLocales is the OpenID Connect ui_locales parameter (OIDC Core §3.1.2.1):
// space-separated BCP 47 tags, most preferred first. It wins if any of its
// tags matches a supported language, even only as closely as zh-TW matches
// zh-Hans (the relying party asked for it explicitly). Otherwise acceptLanguage (the HTTP
// Accept-Language header, RFC 9110 §12.5.4, with q-values) decides, and
// when neither matches the result is English. Malformed input is ignored
// tag by tag, never an error.
//
// Matching follows golang.org/x/text/language (CLDR data): zh, zh-CN,
// zh-SG, zh-Hans and cmn get Simplified Chinese; en-GB, en-US get English;
// languages we do not have (fr, ja) get English.
//
// Traditional Chinese (zh-TW, zh-HK, zh-Hant) has no catalog of its own. A
// reader of Traditional Chinese reads Simplified far more easily than a
// language they did not ask for, so a list that offers nothing better gets
// Simplified Chinese. A list that also names English ("zh-TW, en;q=0.8")
// gets English: the person has said they read it, and an exact match beats
// a different script. Browsers in Taiwan and Hong Kong usually also send
// plain "zh", which gets Simplified Chinese either way.
func Negotiate(uiLocales, acceptLanguage string) Locale {
	if i, ok := match(parseUILocales(uiLocales)); ok {
		return Locale{i: i}
	}
	if i, ok := match(parseAcceptLanguage(acceptLanguage)); ok {
		return Locale{i: i}
	}
	return Locale{}
}

// match returns the index of the best supported language for the
// preference list, or false when none is a plausible match.
func match(prefs []language.Tag) (int, bool) {
	if len(prefs) == 0 {
		return 0, false
	}
	_, i, conf := matcher.Match(prefs...)
	if conf == language.No {
		return 0, false
	}
	return i, true
}

func parseUILocales(s string) []language.Tag {
	if len(s) > maxLanguageInput {
		s = s[:maxLanguageInput]
	}
	var tags []language.Tag
	for _, f := range strings.Fields(s) {
		if len(tags) == maxLanguageTags {
			break
		}
		if t, err := language.Parse(f); err == nil && t != language.Und {
			tags = append(tags, t)
		}
	}
	return tags
}

// parseAcceptLanguage reads "da, en-GB;q=0.8, en;q=0.7" leniently: an entry
// that does not parse is skipped rather than spoiling the whole header
// (language.ParseAcceptLanguage rejects it all), q=0 means "not wanted",
// "*" is ignored (it would match anything, and English is the fallback
// anyway). Tags come back by descending q, ties in header order.
func parseAcceptLanguage(s string) []language.Tag {
	if len(s) > maxLanguageInput {
		s = s[:maxLanguageInput]
	}
	type pref struct {
		tag language.Tag
		q   float64
	}
	var prefs []pref
	for entry := range strings.SplitSeq(s, ",") {
		if len(prefs) == maxLanguageTags {
			break
		}
		name, params, _ := strings.Cut(entry, ";")
		name = strings.TrimSpace(name)
		if name == "" || name == "*" {
			continue
		}
		q, ok := parseQ(params)
		if !ok || q == 0 {
			continue
		}
		t, err := language.Parse(name)
		if err != nil || t == language.Und {
			continue
		}
		prefs = append(prefs, pref{t, q})
	}
	slices.SortStableFunc(prefs, func(a, b pref) int {
		switch {
		case a.q > b.q:
			return -1
		case a.q < b.q:
			return 1
		}
		return 0
	})
	tags := make([]language.Tag, len(prefs))
	for i, p := range prefs {
		tags[i] = p.tag
	}
	return tags
}

// parseQ reads the parameters after a language range: "" or "q=0.8"
// (RFC 9110 §12.4.2: 0 to 1, at most three decimals). Other parameters are
// ignored; a malformed weight rejects the entry.
func parseQ(params string) (float64, bool) {
	q := 1.0
	for p := range strings.SplitSeq(params, ";") {
		k, v, found := strings.Cut(strings.TrimSpace(p), "=")
		if !found || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) == 0 || len(v) > 5 || (v[0] != '0' && v[0] != '1') {
			return 0, false
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 1 {
			return 0, false
		}
		q = f
	}
	return q, true
}
