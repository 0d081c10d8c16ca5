package throttle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// Rule is the throttle for one kind of key. The zero Rule throttles
// nothing.
type Rule struct {
	// DelayAfter is the number of failures from which each further attempt
	// must wait after the last failure: BaseDelay at DelayAfter failures,
	// doubling with each failure beyond, at most MaxDelay. 0: no delays.
	DelayAfter int
	// LockAfter is the number of failures that locks the key for Lockout
	// after the last of them. 0: never locked.
	LockAfter int
}

// Enabled reports whether the rule throttles at all.
func (r Rule) Enabled() bool { return r.DelayAfter > 0 || r.LockAfter > 0 }

// LimitRule is the rule for a limit of n failures: locked at n, delays from
// n/2 on. n <= 0 turns the rule off.
func LimitRule(n int) Rule {
	if n <= 0 {
		return Rule{}
	}
	return Rule{DelayAfter: max(n/2, 1), LockAfter: n}
}

// Policy says when failed sign-ins delay or lock further attempts.
type Policy struct {
	Account Rule // per account: the normalized email
	IP      Rule // per client IP (IPv6: per /64)
	// BaseDelay is the first delay, MaxDelay the longest.
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// Lockout is how long a lock lasts after the failure that caused it.
	// It is also the window failures are counted in: a count starts over
	// with the first failure at least Lockout after the count's first.
	// Attempts refused by a lock are not counted, so a lock runs its
	// course and then the count starts over.
	Lockout time.Duration
}

// DefaultPolicy is what a server uses unless configured otherwise. Per
// account: 5 failures free, then 1s, 2s, 4s, 8s, 16s between attempts, and
// the 10th failure in 15 minutes locks the account for 15 minutes. Per IP,
// ten times as many, so that one address cannot try a password against
// every account (password spraying) while a shared address (an office
// NAT) does not lock out its users through their typos.
func DefaultPolicy() Policy {
	return Policy{
		Account:   LimitRule(10),
		IP:        LimitRule(100),
		BaseDelay: time.Second,
		MaxDelay:  30 * time.Second,
		Lockout:   15 * time.Minute,
	}
}

// Validate reports a policy that cannot work.
func (p Policy) Validate() error {
	var errs []error
	for _, r := range []struct {
		name string
		Rule
	}{{"account", p.Account}, {"ip", p.IP}} {
		if r.DelayAfter < 0 || r.LockAfter < 0 {
			errs = append(errs, fmt.Errorf("%s rule: negative threshold", r.name))
		}
	}
	if p.Account.Enabled() || p.IP.Enabled() {
		if p.BaseDelay <= 0 || p.MaxDelay < p.BaseDelay {
			errs = append(errs, errors.New("delays: need 0 < BaseDelay <= MaxDelay"))
		}
		// The counters last a window (= Lockout) after their last failure;
		// a delay longer than that would outlive its counter.
		if p.Lockout < p.MaxDelay {
			errs = append(errs, errors.New("lockout: must be at least MaxDelay"))
		}
	}
	return errors.Join(errs...)
}

// notBefore is when the next attempt may be made on a key that has
// failures failures, the last at last; locked says whether that is a lock
// rather than a delay. The zero time means now.
func (p Policy) notBefore(r Rule, failures int, last time.Time) (t time.Time, locked bool) {
	switch {
	case r.LockAfter > 0 && failures >= r.LockAfter:
		return last.Add(p.Lockout), true
	case r.DelayAfter > 0 && failures >= r.DelayAfter:
		d := p.BaseDelay
		for i := r.DelayAfter; i < failures && d < p.MaxDelay; i++ {
			d *= 2
		}
		return last.Add(min(d, p.MaxDelay)), false
	}
	return time.Time{}, false
}

// Decision is whether a sign-in attempt may go ahead.
type Decision struct {
	Allowed bool
	// RetryAfter is, when not Allowed, how long until the next attempt may
	// be made: whole seconds, at least one (what Retry-After carries).
	RetryAfter time.Duration
	// Locked tells a lock from a delay, and Scope ("account" or "ip")
	// which key refused; both for logs only. The person sees the same
	// thing whatever they are, or an account that does not exist would
	// look different from one that does.
	Locked bool
	Scope  string
}

// Options are a Limiter's dependencies.
type Options struct {
	Now    func() time.Time // default time.Now
	Logger *slog.Logger     // default: discards
}

// Limiter applies a Policy to sign-in attempts. It keeps no state of its
// own: every count is in the store, so limiters on many instances act as
// one.
type Limiter struct {
	store  storage.LoginThrottleStore
	policy Policy
	now    func() time.Time
	logger *slog.Logger
}

// New returns a Limiter. The policy must be valid (Policy.Validate).
func New(store storage.LoginThrottleStore, policy Policy, opts Options) *Limiter {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Limiter{store: store, policy: policy, now: opts.Now, logger: opts.Logger}
}

// key is one counter an attempt is judged by.
type key struct {
	scope string
	name  string
	rule  Rule
}

func (l *Limiter) keys(email, ip string) []key {
	var ks []key
	if l.policy.Account.Enabled() {
		ks = append(ks, key{"account", AccountKey(email), l.policy.Account})
	}
	if l.policy.IP.Enabled() {
		ks = append(ks, key{"ip", IPKey(ip), l.policy.IP})
	}
	return ks
}

func names(ks []key) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.name
	}
	return out
}

// Attempt decides whether a sign-in for email from ip may be tried now,
// before the password is looked at. If it may, the attempt is counted as
// a failure at once, and Success takes that back if the password was
// right.
//
// Counting up front is what makes the limits exact under concurrency: were
// failures counted after the (slow, deliberately) password check, a burst
// of simultaneous guesses would all pass the check before any of them was
// counted. Here each attempt gets its own place in the count, and is
// judged by the state just before it (storage reports it), so a burst gets
// exactly what the policy allows one attempt after another, and the rest
// are refused and taken back out of the count.
//
// Refused attempts are not counted: hammering a locked account does not
// extend its lock.
func (l *Limiter) Attempt(ctx context.Context, email, ip string) (Decision, error) {
	ks := l.keys(email, ip)
	if len(ks) == 0 {
		return Decision{Allowed: true}, nil
	}
	now := l.now()
	cur, err := l.store.GetLoginThrottles(ctx, names(ks), now)
	if err != nil {
		return Decision{}, fmt.Errorf("throttle: %w", err)
	}
	if d := l.judge(ks, now, func(i int) (int, time.Time) { return cur[i].Failures, cur[i].LastFailureAt }); !d.Allowed {
		l.logger.InfoContext(ctx, "sign-in throttled", slog.String("scope", d.Scope), slog.Bool("locked", d.Locked),
			slog.Duration("retry_after", d.RetryAfter), slog.String("ip", ip))
		return d, nil
	}
	after, err := l.store.RecordLoginFailure(ctx, names(ks), now, l.policy.Lockout)
	if err != nil {
		return Decision{}, fmt.Errorf("throttle: %w", err)
	}
	// Judge the attempt by the state it replaced: if others were counted
	// since the read above, this one may have lost its place.
	d := l.judge(ks, now, func(i int) (int, time.Time) {
		var at time.Time
		if after[i].PriorFailureAt != nil {
			at = *after[i].PriorFailureAt
		}
		return after[i].PriorFailures, at
	})
	if !d.Allowed {
		// Lost its place to simultaneous attempts: it is not made, so it
		// is not counted either, and a burst leaves the count as if only
		// the attempts let in had been made. Its Retry-After comes from a
		// count that may still hold other refused attempts of the same
		// burst: on the safe side.
		for _, k := range ks {
			if err := l.store.ForgiveLoginFailure(ctx, k.name); err != nil {
				return Decision{}, fmt.Errorf("throttle: %w", err)
			}
		}
		l.logger.InfoContext(ctx, "sign-in throttled", slog.String("scope", d.Scope), slog.Bool("locked", d.Locked),
			slog.Duration("retry_after", d.RetryAfter), slog.String("ip", ip), slog.Bool("burst", true))
		return d, nil
	}
	for i, k := range ks {
		if k.rule.LockAfter > 0 && after[i].Failures == k.rule.LockAfter {
			// The key (a hash, for accounts) is enough to find the row;
			// the email is not logged, as it may be a mistyped password.
			l.logger.WarnContext(ctx, "sign-in key locked", slog.String("scope", k.scope), slog.String("key", k.name),
				slog.Int("failures", after[i].Failures), slog.Duration("lockout", l.policy.Lockout), slog.String("ip", ip))
		}
	}
	return Decision{Allowed: true}, nil
}

// judge is the decision for the counts state(i) of keys ks at now: the
// latest of their not-before times.
func (l *Limiter) judge(ks []key, now time.Time, state func(i int) (failures int, last time.Time)) Decision {
	d := Decision{Allowed: true}
	for i, k := range ks {
		failures, last := state(i)
		nb, locked := l.policy.notBefore(k.rule, failures, last)
		if !nb.After(now) {
			continue
		}
		// Whole seconds, rounded up: Retry-After has no fractions, and
		// rounding down would invite an attempt that is still too early.
		wait := nb.Sub(now)
		if r := wait % time.Second; r != 0 {
			wait += time.Second - r
		}
		if d.Allowed || wait > d.RetryAfter {
			d = Decision{RetryAfter: wait, Locked: locked, Scope: k.scope}
		}
	}
	return d
}

// Success records that an attempt let in by Attempt was a correct
// sign-in: the account's count is cleared, and the attempt is taken back
// from the IP's count (whose failures decay on their own).
func (l *Limiter) Success(ctx context.Context, email, ip string) error {
	var errs []error
	for _, k := range l.keys(email, ip) {
		var err error
		if k.scope == "account" {
			err = l.store.ClearLoginThrottle(ctx, k.name)
		} else {
			err = l.store.ForgiveLoginFailure(ctx, k.name)
		}
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("throttle: record success: %w", err)
	}
	return nil
}

// Abandon takes back an attempt let in by Attempt that could not be
// judged (the store failed while checking the password): it was not a
// failure of the person's.
func (l *Limiter) Abandon(ctx context.Context, email, ip string) error {
	var errs []error
	for _, k := range l.keys(email, ip) {
		errs = append(errs, l.store.ForgiveLoginFailure(ctx, k.name))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("throttle: abandon attempt: %w", err)
	}
	return nil
}

// Unlock clears the count of the account email names: what an operator
// does for a person locked out by someone else's guessing. Counts per
// client address are left to decay.
func Unlock(ctx context.Context, store storage.LoginThrottleStore, email string) error {
	if err := store.ClearLoginThrottle(ctx, AccountKey(email)); err != nil {
		return fmt.Errorf("throttle: unlock: %w", err)
	}
	return nil
}

// AccountKey is the counter key of the account an email names, whether or
// not such an account exists. The email is normalized as sign-in does
// (trimmed, lower case) and stored only as a hash: people type their
// password into the email field, and a database dump must not show it.
func AccountKey(email string) string {
	h := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return "account:" + hex.EncodeToString(h[:])
}

// IPKey is the counter key of a client address. An IPv6 client is counted
// by its /64, the block a single subscriber usually gets, so that one
// client cannot pick a fresh address per guess; an IPv4 address in IPv6
// form counts as the IPv4 address.
func IPKey(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return "ip:" + ip
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		return "ip:" + netip.PrefixFrom(addr, 64).Masked().String()
	}
	return "ip:" + addr.String()
}
