package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage/pgtest"
)

// withMaxConns limits the pgx pool a database URL opens.
func withMaxConns(dbURL string, n int) string {
	if !strings.Contains(dbURL, "://") { // keyword/value form
		return dbURL + " pool_max_conns=" + strconv.Itoa(n)
	}
	sep := "?"
	if strings.Contains(dbURL, "?") {
		sep = "&"
	}
	return dbURL + sep + "pool_max_conns=" + strconv.Itoa(n)
}

// TestNoStallOnASmallPool: no request holds a database connection while
// it signs, hashes or waits on a lock (DESIGN.md, "Scale"). 1,000 token
// requests at once — machine tokens (JWT and opaque), refresh rotations
// and code redemptions, JWT and opaque — against a server whose pool has
// two connections all succeed. The two-minute deadline is a deadlock
// detector, not a performance assertion.
func TestNoStallOnASmallPool(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 requests; skipped with -short")
	}
	const poolSize = 2
	db := openStore(t, withMaxConns(pgtest.NewDatabaseURL(t), poolSize))
	if got := db.Pool().Config().MaxConns; got != poolSize {
		t.Fatalf("pool has %d connections, want %d", got, poolSize)
	}
	s := newTestServerOn(t, db)
	a := s.newApp(t, "App", refreshGrants)
	op := s.newApp(t, "Opaque app", refreshGrants+`,"access_token_format":"opaque"`)
	m := s.newMachine(t, "Batch", "")
	om := s.newMachine(t, "Opaque batch", `"access_token_format":"opaque"`)
	b := s.signedIn(t, "ada@example.com")

	type request struct {
		form       url.Values
		id, secret string
	}
	const each = 250
	var reqs []request
	setup := time.Now()
	for i := range each {
		c := []app{a, op}[i%2]
		// A code to redeem...
		ar := c.RP.authURL()
		code := b.authorizeTo(c, ar)
		reqs = append(reqs, request{tokenForm(code, c.RedirectURI, ar.Verifier), c.ID, c.Secret})
		// ...and a refresh token to rotate, each from a grant of its own.
		ar = c.RP.authURL()
		tok, _ := c.RP.exchange(ar, b.authorizeTo(c, ar))
		reqs = append(reqs, request{refreshForm(tok.RefreshToken, ""), c.ID, c.Secret})
		mc := []machine{m, om}[i%2]
		reqs = append(reqs, request{url.Values{"grant_type": {"client_credentials"}}, mc.ID, mc.Secret})
		reqs = append(reqs, request{url.Values{"grant_type": {"client_credentials"}, "scope": {"invoices:read"}}, mc.ID, mc.Secret})
	}
	t.Logf("setup: %d codes and refresh tokens in %v", 2*each, time.Since(setup).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	transport := &http.Transport{MaxIdleConnsPerHost: len(reqs)}
	defer transport.CloseIdleConnections()
	hc := &http.Client{Transport: transport}
	type result struct {
		status int
		body   string
		err    error
	}
	results := make([]result, len(reqs))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, r := range reqs {
		wg.Go(func() {
			<-start
			st, body, err := httpPost(ctx, hc, s.URL+"/token", r.form, r.id, r.secret)
			results[i] = result{st, body, err}
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	wall := time.Since(began)
	if ctx.Err() != nil {
		t.Fatalf("requests still unanswered after 2 minutes: the server stalled on a pool of %d", poolSize)
	}

	failures := map[string]int{}
	for i, res := range results {
		switch {
		case res.err != nil:
			failures[fmt.Sprintf("%s: %v", reqs[i].form.Get("grant_type"), res.err)]++
		case res.status != http.StatusOK:
			failures[fmt.Sprintf("%s: %d %s", reqs[i].form.Get("grant_type"), res.status, strings.TrimSpace(res.body))]++
		default:
			var tf tokenFields
			if err := json.Unmarshal([]byte(res.body), &tf); err != nil || tf.AccessToken == "" {
				failures["unreadable 200: "+res.body]++
			} else if reqs[i].form.Get("grant_type") == "refresh_token" && tf.RefreshToken == "" {
				failures["refresh without a new refresh token"]++
			}
		}
	}
	if len(failures) > 0 {
		var lines []string
		for k, n := range failures {
			lines = append(lines, fmt.Sprintf("%4d × %s", n, k))
		}
		sort.Strings(lines)
		t.Errorf("%d concurrent token requests on a pool of %d; failures:\n%s", len(reqs), poolSize, strings.Join(lines, "\n"))
	}
	t.Logf("%d concurrent token requests (%d code redemptions, %d refresh rotations, %d client_credentials; half of each opaque) on a pool of %d: answered in %v",
		len(reqs), each, each, 2*each, poolSize, wall.Round(time.Millisecond))
	if r := doRaw(t, mustGet(t, s.URL+"/readyz")); r.Status != http.StatusOK {
		t.Errorf("readyz after the burst: %d %s", r.Status, r.Body)
	}
}

func mustGet(t testing.TB, rawURL string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
