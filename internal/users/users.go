package users

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-idp/gatehouse/internal/secrets"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// Input limits.
const (
	// MaxEmailLen is the longest email address accepted, in bytes
	// (RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the
	// angle brackets).
	MaxEmailLen = 254
	// MaxNameLen is the longest display name accepted, in characters.
	MaxNameLen = 200
	// MinPasswordLen is the shortest password accepted, in characters
	// (NIST SP 800-63B §5.1.1.2: at least 8; each code point counts as one).
	MinPasswordLen = 8
	// MaxPasswordLen is the longest password accepted, in bytes. NIST
	// asks for at least 64 characters; the cap keeps argon2 input bounded.
	MaxPasswordLen = 1024
)

// ErrInvalidCredentials is what Authenticate returns for an unknown email, a
// wrong password and a disabled user alike, so that a caller cannot tell
// which. Any other error from Authenticate is a server-side failure.
var ErrInvalidCredentials = errors.New("users: invalid email or password")

// Reasons a CredentialsError gives.
const (
	ReasonUnknownAccount = "unknown_account" // no such email (or it is too long to be one)
	ReasonBadPassword    = "bad_password"
	ReasonDisabled       = "disabled" // the password was right
	ReasonNoPassword     = "no_password"
)

// CredentialsError is the ErrInvalidCredentials Authenticate returns, with
// why, for the audit trail and logs. Its message is ErrInvalidCredentials'
// own: Reason must never reach the person signing in, or the form would
// tell which addresses have accounts.
type CredentialsError struct {
	Reason string // one of the Reason constants
	UserID string // the account, when the email matched one
}

func (e *CredentialsError) Error() string { return ErrInvalidCredentials.Error() }

// Unwrap makes errors.Is(err, ErrInvalidCredentials) hold.
func (e *CredentialsError) Unwrap() error { return ErrInvalidCredentials }

// ValidationError says which input field of CreateUser is unacceptable and
// why. Message never contains the password.
type ValidationError struct {
	Field   string // "email", "name" or "password"
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

// Options are the Service's dependencies. Zero values are replaced by
// defaults.
type Options struct {
	Now func() time.Time // default time.Now
	// Rand supplies ids and salts; it must be safe for concurrent use if
	// the Service is. Default crypto/rand.Reader.
	Rand   io.Reader
	Logger *slog.Logger // default: discards
	// Params are the argon2id parameters for new hashes (and for the
	// dummy hash that unknown emails are checked against); default
	// DefaultArgon2Params(). Check them with Argon2Params.Validate.
	Params Argon2Params
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Params == (Argon2Params{}) {
		o.Params = DefaultArgon2Params()
	}
	return o
}

// Store is what the Service needs of storage: users, and ending what a
// user has signed in to when an account is disabled or its password is
// reset.
type Store interface {
	storage.UserStore
	EndUserSessions(ctx context.Context, userID string, now time.Time) (int64, error)
	RevokeUserGrants(ctx context.Context, userID string, now time.Time) (int64, error)
}

// Service creates, reads and authenticates users. It is safe for concurrent
// use.
type Service struct {
	store Store
	opts  Options
	// dummyHash is a hash of a random password under opts.Params, verified
	// when the email is unknown so that it costs what a wrong password
	// costs. Computed on first use: the CLI creating one user should not
	// pay for it.
	dummyHash func() (string, error)
}

// New returns a Service over store.
func New(store Store, opts Options) *Service {
	s := &Service{store: store, opts: opts.withDefaults()}
	s.dummyHash = sync.OnceValues(func() (string, error) {
		pw, err := secrets.New(s.opts.Rand)
		if err != nil {
			return "", err
		}
		return HashPassword(pw, s.opts.Params, s.opts.Rand)
	})
	return s
}

// CreateUser is the input of Service.Create.
type CreateUser struct {
	Email    string
	Name     string // optional display name
	Password string
	// EmailVerified records that whoever creates the user has checked
	// that the address is theirs (an administrator who knows the person).
	EmailVerified bool
}

// Create validates and normalizes in, hashes the password and stores a new,
// enabled user. Invalid input is a
// *ValidationError; an email that is already registered is an error wrapping
// storage.ErrAlreadyExists.
func (s *Service) Create(ctx context.Context, in CreateUser) (storage.User, error) {
	email, err := NormalizeEmail(in.Email)
	if err != nil {
		return storage.User{}, err
	}
	name, err := normalizeName(in.Name)
	if err != nil {
		return storage.User{}, err
	}
	if err := validatePassword(in.Password); err != nil {
		return storage.User{}, err
	}
	hash, err := HashPassword(in.Password, s.opts.Params, s.opts.Rand)
	if err != nil {
		return storage.User{}, fmt.Errorf("create user: %w", err)
	}
	id, err := secrets.NewUUID(s.opts.Rand)
	if err != nil {
		return storage.User{}, fmt.Errorf("create user: new id: %w", err)
	}
	// Storage keeps microseconds; return what a later Get returns.
	now := s.opts.Now().UTC().Truncate(time.Microsecond)
	u := storage.User{
		ID:            id,
		Email:         email,
		EmailVerified: in.EmailVerified,
		Name:          name,
		PasswordHash:  hash,
		CreatedAt:     now,
		UpdatedAt:     now,
	}
	if err := s.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			// The id is 122 random bits: a clash is the email.
			return storage.User{}, fmt.Errorf("create user: a user with email %q already exists: %w", email, err)
		}
		return storage.User{}, fmt.Errorf("create user: %w", err)
	}
	s.opts.Logger.InfoContext(ctx, "user created", "user", LogValue(u))
	return u, nil
}

// Get returns the user with this id; errors wrap storage.ErrNotFound when
// there is none.
func (s *Service) Get(ctx context.Context, id string) (storage.User, error) {
	u, err := s.store.GetUser(ctx, id)
	if err != nil {
		return storage.User{}, fmt.Errorf("get user %q: %w", id, err)
	}
	return u, nil
}

// List returns all users, oldest first.
func (s *Service) List(ctx context.Context) ([]storage.User, error) {
	us, err := s.store.ListUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return us, nil
}

// Ended counts what Disable and SetPassword ended.
type Ended struct {
	Sessions int64 // login sessions ended
	Grants   int64 // grants revoked, and with them their refresh tokens
}

// Disable marks the user disabled, so that they can no longer sign in, then
// ends every login session of theirs and revokes every grant they made
// (offline ones too), so that their refresh tokens fail and introspection
// reports their access tokens inactive at once. JWT access tokens already
// issued stay valid where they are verified locally until they expire.
//
// Errors wrap storage.ErrNotFound for an unknown id. If ending sessions or
// revoking grants fails, the user is disabled all the same and Ended counts
// what was done; Disable can be called again to finish.
func (s *Service) Disable(ctx context.Context, id string) (Ended, error) {
	now := s.now()
	if err := s.store.SetUserDisabled(ctx, id, true, now); err != nil {
		return Ended{}, fmt.Errorf("disable user %q: %w", id, err)
	}
	ended, err := s.endEverything(ctx, id, now)
	if err != nil {
		return ended, fmt.Errorf("disable user %q: %w", id, err)
	}
	s.opts.Logger.InfoContext(ctx, "user disabled", "user_id", id,
		"sessions_ended", ended.Sessions, "grants_revoked", ended.Grants)
	return ended, nil
}

// Enable lets a disabled user sign in again. Nothing that Disable ended
// comes back. Errors wrap storage.ErrNotFound for an unknown id.
func (s *Service) Enable(ctx context.Context, id string) error {
	if err := s.store.SetUserDisabled(ctx, id, false, s.now()); err != nil {
		return fmt.Errorf("enable user %q: %w", id, err)
	}
	s.opts.Logger.InfoContext(ctx, "user enabled", "user_id", id)
	return nil
}

// SetPassword validates password as Create does, stores its argon2id hash,
// then ends every login session of the user and revokes every grant they
// made, as Disable does: a new password is the answer to a stolen one, and
// whoever holds it may already be signed in. Invalid input is a
// *ValidationError (field "password") and changes nothing; errors wrap
// storage.ErrNotFound for an unknown id. If ending sessions or revoking
// grants fails, the new password is set all the same and Ended counts what
// was done.
func (s *Service) SetPassword(ctx context.Context, id, password string) (Ended, error) {
	if err := validatePassword(password); err != nil {
		return Ended{}, err
	}
	hash, err := HashPassword(password, s.opts.Params, s.opts.Rand)
	if err != nil {
		return Ended{}, fmt.Errorf("set password of user %q: %w", id, err)
	}
	now := s.now()
	if err := s.store.SetUserPassword(ctx, id, hash, now); err != nil {
		return Ended{}, fmt.Errorf("set password of user %q: %w", id, err)
	}
	ended, err := s.endEverything(ctx, id, now)
	if err != nil {
		return ended, fmt.Errorf("set password of user %q: %w", id, err)
	}
	s.opts.Logger.InfoContext(ctx, "user password set", "user_id", id,
		"sessions_ended", ended.Sessions, "grants_revoked", ended.Grants)
	return ended, nil
}

// endEverything revokes every grant of the user, offline ones included,
// ends their sessions, and revokes again.
//
// Revoking first makes the count honest: ending a session revokes the
// grants bound to it without counting them. Revoking again catches a grant
// made through a still-live session between the first two steps (a code
// redeemed meanwhile), which ending the sessions would miss if it is
// offline.
func (s *Service) endEverything(ctx context.Context, id string, now time.Time) (Ended, error) {
	var ended Ended
	n, err := s.store.RevokeUserGrants(ctx, id, now)
	ended.Grants += n
	if err != nil {
		return ended, fmt.Errorf("revoke grants: %w", err)
	}
	if ended.Sessions, err = s.store.EndUserSessions(ctx, id, now); err != nil {
		return ended, fmt.Errorf("end sessions: %w", err)
	}
	n, err = s.store.RevokeUserGrants(ctx, id, now)
	ended.Grants += n
	if err != nil {
		return ended, fmt.Errorf("revoke grants: %w", err)
	}
	return ended, nil
}

// now is the current time as storage keeps it (microseconds, UTC).
func (s *Service) now() time.Time { return s.opts.Now().UTC().Truncate(time.Microsecond) }

// Authenticate returns the enabled user with this email and password. An
// unknown email, a wrong password and a disabled user all give
// ErrInvalidCredentials, after the same argon2id work, so neither the answer
// nor its timing tells whether an account exists. Any other error (the
// store is down, a stored hash is corrupt) is a server-side failure the
// caller must not report as a wrong password.
func (s *Service) Authenticate(ctx context.Context, email, password string) (storage.User, error) {
	// No account can have a longer password, and hashing megabytes on
	// demand is a denial of service. Saying no early reveals nothing about
	// the account.
	if len(password) > MaxPasswordLen {
		return storage.User{}, &CredentialsError{Reason: ReasonBadPassword}
	}
	email = strings.ToLower(strings.TrimSpace(email))
	var u storage.User
	var err error
	if len(email) <= MaxEmailLen {
		u, err = s.store.GetUserByEmail(ctx, email)
	} else {
		err = storage.ErrNotFound
	}
	switch {
	case errors.Is(err, storage.ErrNotFound):
		// Burn the time of a real verification. Do not log the email:
		// people type their password into the email field.
		if err := s.verifyDummy(password); err != nil {
			return storage.User{}, err
		}
		s.opts.Logger.InfoContext(ctx, "authentication failed", "reason", "unknown_email")
		return storage.User{}, &CredentialsError{Reason: ReasonUnknownAccount}
	case err != nil:
		return storage.User{}, fmt.Errorf("authenticate: look up user: %w", err)
	}

	if u.PasswordHash == "" {
		// An account without a password cannot sign in with one.
		if err := s.verifyDummy(password); err != nil {
			return storage.User{}, err
		}
		s.opts.Logger.InfoContext(ctx, "authentication failed", "reason", "no_password", "user_id", u.ID)
		return storage.User{}, &CredentialsError{Reason: ReasonNoPassword, UserID: u.ID}
	}
	ok, err := VerifyPassword(u.PasswordHash, password)
	if err != nil {
		s.opts.Logger.ErrorContext(ctx, "stored password hash unusable", "user_id", u.ID, "err", err)
		return storage.User{}, fmt.Errorf("authenticate user %q: %w", u.ID, err)
	}
	switch {
	case !ok:
		s.opts.Logger.InfoContext(ctx, "authentication failed", "reason", "wrong_password", "user_id", u.ID)
		return storage.User{}, &CredentialsError{Reason: ReasonBadPassword, UserID: u.ID}
	case u.Disabled:
		// Checked after the password so a disabled account costs the same
		// and a wrong guess does not learn the account is disabled.
		s.opts.Logger.InfoContext(ctx, "authentication failed", "reason", "disabled", "user_id", u.ID)
		return storage.User{}, &CredentialsError{Reason: ReasonDisabled, UserID: u.ID}
	}
	return u, nil
}

func (s *Service) verifyDummy(password string) error {
	h, err := s.dummyHash()
	if err != nil {
		return fmt.Errorf("authenticate: dummy hash: %w", err)
	}
	if _, err := VerifyPassword(h, password); err != nil {
		return fmt.Errorf("authenticate: dummy hash: %w", err)
	}
	return nil
}

// NormalizeEmail trims and lower-cases email and checks that it is a bare
// address (no display name, no comments, no angle brackets) of at most
// MaxEmailLen bytes. Errors are *ValidationError for field "email".
func NormalizeEmail(email string) (string, error) {
	invalid := func(msg string) (string, error) {
		return "", &ValidationError{Field: "email", Message: msg}
	}
	// Before lower-casing, which would turn invalid bytes into U+FFFD.
	if !utf8.ValidString(email) {
		return invalid("is not valid UTF-8")
	}
	e := strings.ToLower(strings.TrimSpace(email))
	switch {
	case e == "":
		return invalid("is required")
	case len(e) > MaxEmailLen:
		return invalid(fmt.Sprintf("is longer than %d bytes", MaxEmailLen))
	}
	a, err := mail.ParseAddress(e)
	// ParseAddress also accepts "Name <a@b>" and "a@b (comment)"; only a
	// bare addr-spec, spelled as it comes back, is an email address here.
	if err != nil || a.Name != "" || a.Address != e {
		return invalid(fmt.Sprintf("%q is not a valid email address", e))
	}
	return e, nil
}

func normalizeName(name string) (string, error) {
	n := strings.TrimSpace(name)
	switch {
	case !utf8.ValidString(n):
		return "", &ValidationError{Field: "name", Message: "is not valid UTF-8"}
	case utf8.RuneCountInString(n) > MaxNameLen:
		return "", &ValidationError{Field: "name", Message: fmt.Sprintf("is longer than %d characters", MaxNameLen)}
	case strings.IndexFunc(n, unicode.IsControl) >= 0:
		// A newline in a name ends up in emails, logs and HTML.
		return "", &ValidationError{Field: "name", Message: "contains control characters"}
	}
	return n, nil
}

func validatePassword(pw string) error {
	switch {
	case !utf8.ValidString(pw):
		return &ValidationError{Field: "password", Message: "is not valid UTF-8"}
	case utf8.RuneCountInString(pw) < MinPasswordLen:
		return &ValidationError{Field: "password", Message: fmt.Sprintf("must be at least %d characters", MinPasswordLen)}
	case len(pw) > MaxPasswordLen:
		return &ValidationError{Field: "password", Message: fmt.Sprintf("must be at most %d bytes", MaxPasswordLen)}
	}
	return nil
}

// LogValue returns u as a log value without its password hash, for
// logger.Info("...", "user", users.LogValue(u)). Never log a storage.User
// directly: its PasswordHash would be in the log.
func LogValue(u storage.User) slog.Value {
	return slog.GroupValue(
		slog.String("id", u.ID),
		slog.String("email", u.Email),
		slog.Bool("disabled", u.Disabled),
	)
}
