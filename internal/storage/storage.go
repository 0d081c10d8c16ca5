package storage

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Sentinel errors. Backends wrap them with context; test with errors.Is.
var (
	// ErrNotFound: no row matches (or it has expired, where the method
	// takes a now argument).
	ErrNotFound = errors.New("storage: not found")
	// ErrAlreadyExists: a unique constraint was violated.
	ErrAlreadyExists = errors.New("storage: already exists")
	// ErrConflict: the row exists but is not in the state the operation
	// needs (a code already used, a refresh token already spent).
	ErrConflict = errors.New("storage: conflict")
	// ErrRevoked: the grant the operation works under has been revoked.
	ErrRevoked = errors.New("storage: revoked")
)

// Store is everything Gatehouse persists. Implementations are safe for
// concurrent use by many goroutines and many processes sharing one database.
type Store interface {
	// Ping reports whether the database is reachable.
	Ping(ctx context.Context) error
	// Close releases the connection pool.
	Close() error

	UserStore
	ClientStore
	SessionStore
	AuthRequestStore
	AuthCodeStore
	GrantStore
	ConsentStore
	SigningKeyStore
	RefreshTokenStore
	AccessTokenStore
	LoginThrottleStore
	BackchannelLogoutStore
	AuditStore

	// DeleteExpired removes rows that can never be used again: auth
	// requests and authorization codes whose expires_at is before now,
	// login sessions whose absolute expiry is before now, opaque access
	// tokens and revoked-JWT entries whose expires_at is before now,
	// back-channel logouts delivered or given up before now, and
	// refresh tokens whose AbsoluteExpiresAt is before now or which are
	// unspent with ExpiresAt before now. (Spent refresh tokens are kept
	// until their family's absolute expiry so that reuse is recognised for
	// the whole life of the family.) Login throttle counters whose
	// ExpiresAt is before now go too. It returns how many rows were removed.
	DeleteExpired(ctx context.Context, now time.Time) (int64, error)
}

// UserStore keeps people who can sign in.
type UserStore interface {
	// CreateUser inserts u. ErrAlreadyExists if the ID or Email is taken.
	CreateUser(ctx context.Context, u User) error
	// GetUser returns the user with this ID, or ErrNotFound.
	GetUser(ctx context.Context, id string) (User, error)
	// GetUserByEmail looks up by normalized (lower-case) email, or ErrNotFound.
	GetUserByEmail(ctx context.Context, email string) (User, error)
	// ListUsers returns all users ordered by CreatedAt, then ID.
	ListUsers(ctx context.Context) ([]User, error)
	// SetUserDisabled sets Disabled and UpdatedAt = now. ErrNotFound if
	// there is no such user.
	SetUserDisabled(ctx context.Context, id string, disabled bool, now time.Time) error
	// SetUserPassword sets PasswordHash and UpdatedAt = now. ErrNotFound if
	// there is no such user.
	SetUserPassword(ctx context.Context, id, passwordHash string, now time.Time) error
}

// ClientStore keeps registered OAuth clients.
type ClientStore interface {
	// CreateClient inserts c. ErrAlreadyExists if the ID is taken.
	CreateClient(ctx context.Context, c Client) error
	// GetClient returns the client with this ID, or ErrNotFound.
	GetClient(ctx context.Context, id string) (Client, error)
	// ListClients returns all clients ordered by CreatedAt, then ID.
	ListClients(ctx context.Context) ([]Client, error)
	// DeleteClient removes the client and, in the same transaction, its
	// consents, auth requests, authorization codes, grants, refresh tokens
	// and opaque access tokens (a deleted client must leave nothing that
	// could still be redeemed). ErrNotFound if there was no such client.
	DeleteClient(ctx context.Context, id string) error
	// ClientsVersion returns a number that changes, in the same transaction,
	// whenever a client is created or deleted. In-process client caches
	// poll it to notice changes made by other instances and the CLI.
	ClientsVersion(ctx context.Context) (int64, error)
}

// SessionStore keeps login sessions at the IdP.
type SessionStore interface {
	// CreateSession inserts s. ErrAlreadyExists if ID or SecretHash is taken.
	CreateSession(ctx context.Context, s Session) error
	// GetSessionBySecret returns the session whose cookie secret hashes to
	// secretHash, ended or not (the caller decides what an ended or idle
	// session means). ErrNotFound if none.
	GetSessionBySecret(ctx context.Context, secretHash []byte) (Session, error)
	// GetSession returns the session with this public ID (the sid).
	GetSession(ctx context.Context, id string) (Session, error)
	// TouchSession sets LastSeenAt = now for a session that has not ended.
	// ErrNotFound if there is no such session, ErrConflict if it has ended.
	TouchSession(ctx context.Context, id string, now time.Time) error
	// EndSession sets EndedAt = now if it is not already set and, in the
	// same transaction, revokes (RevokedAt = now) every unrevoked grant
	// bound to the session: SessionID = id and not Offline. ErrNotFound if
	// there is no such session; ending an ended session is not an error
	// (and does not move EndedAt).
	//
	// In the same transaction it queues a back-channel logout (CreatedAt =
	// NextAttemptAt = now, no attempts) for every client that has a grant
	// with SessionID = id (offline or not, revoked or not) and a
	// BackchannelLogoutURI, unless one is already queued for that session
	// and client: ending an ended session again reaches only the clients
	// that joined it since.
	EndSession(ctx context.Context, id string, now time.Time) error
	// EndUserSessions ends every session of the user that has not ended,
	// as EndSession does (bound grants revoked and back-channel logouts
	// queued too, for the sessions it ends). It returns how many sessions
	// it ended.
	EndUserSessions(ctx context.Context, userID string, now time.Time) (int64, error)
	// CreateSessionWithLimit inserts s under the concurrent-session limit
	// l, in one transaction that serializes with every other
	// CreateSessionWithLimit of the same user (Postgres: the user's row is
	// locked FOR NO KEY UPDATE first; SQLite: the database write lock), so that
	// concurrent sign-ins on many instances cannot overshoot the limit.
	// It first ends l.Replaces (if set; see SessionLimit), then
	// counts the user's live sessions (not ended, ExpiresAt after now,
	// LastSeenAt not before l.IdleCutoff). If the count has reached l.Max
	// (and l.Max > 0):
	//   - SessionLimitRefuse: ErrSessionLimit, nothing written (l.Replaces
	//     is not ended either);
	//   - SessionLimitEvictOldest: the least recently active sessions
	//     (LastSeenAt, then CreatedAt, then ID) are ended, as EndSession
	//     ends them (their bound grants revoked in the same transaction),
	//     until there is room for s; their IDs are returned, oldest first.
	// ErrNotFound if the user does not exist; ErrAlreadyExists as for
	// CreateSession.
	CreateSessionWithLimit(ctx context.Context, s Session, l SessionLimit, now time.Time) (evicted []string, err error)
	// ListUserSessions returns the user's sessions that have not ended and
	// whose ExpiresAt is after now, most recently active first
	// (LastSeenAt descending, then ID). Idle timeouts are the caller's.
	ListUserSessions(ctx context.Context, userID string, now time.Time) ([]Session, error)
	// ListLiveSessions is ListUserSessions for every user, ordered by
	// UserID, then as ListUserSessions.
	ListLiveSessions(ctx context.Context, now time.Time) ([]Session, error)
	// SessionActivity counts the sessions that have not ended, whose
	// ExpiresAt is after now and whose LastSeenAt is at or after since, and
	// their distinct users: overall, and per client through the grants
	// made in them (Grant.SessionID, revoked or not), ordered by ClientID.
	SessionActivity(ctx context.Context, since, now time.Time) (SessionActivity, error)
}

// ErrSessionLimit: the user already has as many live sessions as the
// concurrent-session limit allows, and the limit's action is to refuse.
var ErrSessionLimit = errors.New("storage: session limit reached")

// SessionLimitAction is what a sign-in past the concurrent-session limit
// does.
type SessionLimitAction string

// Session limit actions.
const (
	// SessionLimitEvictOldest ends the least recently active sessions.
	SessionLimitEvictOldest SessionLimitAction = "evict_oldest"
	// SessionLimitRefuse refuses the new sign-in.
	SessionLimitRefuse SessionLimitAction = "refuse"
)

// SessionLimit is the concurrent-session policy one sign-in is under.
type SessionLimit struct {
	// Max is the most live sessions a user may have, the new one
	// included; 0 means unlimited.
	Max    int
	Action SessionLimitAction
	// IdleCutoff: sessions last seen before it have timed out (idle) and
	// do not count. The zero time counts every session.
	IdleCutoff time.Time
	// Replaces is the id of the session the browser held before this
	// sign-in, if any. It is ended in the same transaction whoever it
	// belongs to (a sign-in always supersedes the browser's previous
	// session), and is not counted, so that signing in again in the same
	// browser is never refused or evicts another device.
	Replaces string
}

// SessionActivity is what SessionStore.SessionActivity counts.
type SessionActivity struct {
	Sessions  int64
	Users     int64
	PerClient []ClientActivity
}

// ClientActivity counts the active sessions in which a client was granted
// access, and their distinct users.
type ClientActivity struct {
	ClientID string
	Sessions int64
	Users    int64
}

// AuthRequestStore keeps authorization requests that wait for the person to
// sign in or consent. They are short-lived (minutes).
type AuthRequestStore interface {
	// CreateAuthRequest inserts r. ErrAlreadyExists if IDHash is taken.
	CreateAuthRequest(ctx context.Context, r AuthRequest) error
	// GetAuthRequest returns the request if it exists and ExpiresAt is
	// after now; otherwise ErrNotFound.
	GetAuthRequest(ctx context.Context, idHash []byte, now time.Time) (AuthRequest, error)
	// SetAuthRequestLogin records that the person signed in for this
	// request: SessionID = sessionID, LoginAt = loginAt. ErrNotFound if the
	// request does not exist or has expired at loginAt.
	SetAuthRequestLogin(ctx context.Context, idHash []byte, sessionID string, loginAt time.Time) error
	// ConsumeAuthRequest deletes the request and returns it, atomically:
	// of many concurrent callers exactly one gets it, the others get
	// ErrNotFound. Expired requests (ExpiresAt <= now) are ErrNotFound.
	ConsumeAuthRequest(ctx context.Context, idHash []byte, now time.Time) (AuthRequest, error)
}

// AuthCodeStore keeps authorization codes (RFC 6749 §4.1.2).
type AuthCodeStore interface {
	// CreateAuthCode inserts c. ErrAlreadyExists if CodeHash is taken.
	CreateAuthCode(ctx context.Context, c AuthCode) error
	// GetAuthCode returns the code whether used or not (UsedAt tells),
	// expired or not. ErrNotFound if none.
	GetAuthCode(ctx context.Context, codeHash []byte) (AuthCode, error)
	// RedeemAuthCode atomically marks the code used at now and inserts g
	// (whose ID must equal the code's GrantID) and the tokens in issued
	// (whose GrantID must be g.ID), in one transaction. Of many concurrent
	// callers exactly one succeeds; the others get ErrConflict and nothing
	// is written. ErrNotFound if the code does not exist. Expiry is the
	// caller's check (it has already read the code).
	RedeemAuthCode(ctx context.Context, codeHash []byte, now time.Time, g Grant, issued IssuedTokens) (AuthCode, error)
}

// IssuedTokens are the stored tokens a redemption or refresh creates. A nil
// field means none of that kind is stored (no refresh token was issued, or
// the access token is a self-contained JWT).
type IssuedTokens struct {
	RefreshToken *RefreshToken
	AccessToken  *AccessToken
}

// GrantStore keeps grants: what a user let a client do, from which every
// token issued under it descends.
type GrantStore interface {
	// GetGrant returns the grant, revoked or not. ErrNotFound if none.
	GetGrant(ctx context.Context, id string) (Grant, error)
	// RevokeGrant sets RevokedAt = now if not already set. ErrNotFound if
	// there is no such grant; revoking twice is not an error. It takes the
	// same row lock as RotateRefreshToken, so the two serialize.
	RevokeGrant(ctx context.Context, id string, now time.Time) error
	// RevokeUserGrants revokes every unrevoked grant of the user (offline
	// or not) and returns how many it revoked.
	RevokeUserGrants(ctx context.Context, userID string, now time.Time) (int64, error)
	// ListUserGrants returns the user's unrevoked grants, ordered by
	// ClientID, then CreatedAt, then ID.
	ListUserGrants(ctx context.Context, userID string) ([]Grant, error)
	// RevokeUserClientGrants revokes every unrevoked grant of the user to
	// the client (offline or not) and returns how many it revoked. Like
	// RevokeGrant, it takes the grants' row locks, so it serializes with
	// RotateRefreshToken.
	RevokeUserClientGrants(ctx context.Context, userID, clientID string, now time.Time) (int64, error)
}

// RefreshTokenStore keeps refresh tokens, by hash. Each grant has a family
// of them: every rotation spends one and adds its successor.
type RefreshTokenStore interface {
	// GetRefreshToken returns the token, spent or not, expired or not.
	// ErrNotFound if none.
	GetRefreshToken(ctx context.Context, tokenHash []byte) (RefreshToken, error)
	// RotateRefreshToken spends the token and adds its successor, in one
	// transaction that first locks the grant row (SELECT ... FOR UPDATE on
	// Postgres; SQLite write transactions are serialized anyway):
	//   - ErrNotFound if the token does not exist;
	//   - ErrRevoked if its grant is revoked (nothing written);
	//   - ErrConflict if the token is already spent (nothing written);
	//   - otherwise UsedAt = now, SuccessorHash = next.TokenHash, and next
	//     is inserted, and so is at when not nil.
	// Of many concurrent callers with one token exactly one succeeds. A
	// RevokeGrant racing it either commits first (rotation fails with
	// ErrRevoked) or after (the successor belongs to a revoked grant), so
	// no token can outlive a revocation.
	RotateRefreshToken(ctx context.Context, tokenHash []byte, now time.Time, next RefreshToken, at *AccessToken) error
}

// AccessTokenStore keeps opaque access tokens, by hash, and the list of
// revoked JWT access tokens.
type AccessTokenStore interface {
	// CreateAccessToken inserts t. ErrAlreadyExists if the hash is taken.
	CreateAccessToken(ctx context.Context, t AccessToken) error
	// GetAccessToken returns the token, revoked or not, expired or not.
	// ErrNotFound if none.
	GetAccessToken(ctx context.Context, tokenHash []byte) (AccessToken, error)
	// RevokeAccessToken sets RevokedAt = now if not already set.
	// ErrNotFound if there is no such token.
	RevokeAccessToken(ctx context.Context, tokenHash []byte, now time.Time) error
	// RevokeJWT records that the JWT access token with this jti is
	// revoked; the entry can go after expiresAt (the token's exp).
	// Revoking twice is not an error.
	RevokeJWT(ctx context.Context, jti string, expiresAt time.Time) error
	// IsJWTRevoked reports whether RevokeJWT was called for jti.
	IsJWTRevoked(ctx context.Context, jti string) (bool, error)
}

// LoginThrottleStore counts failed sign-ins per key (package throttle keys
// them by account and by client IP), in the database so that every
// instance sees, and adds to, the same counts. It only counts; what a count
// means (a delay, a lock) is the caller's policy, which reads the times.
type LoginThrottleStore interface {
	// GetLoginThrottles returns the counter of each key, in the order of
	// keys. A key without a counter, or whose counter's ExpiresAt is at
	// or before now, comes back as LoginThrottle{Key: key}: no failures.
	GetLoginThrottles(ctx context.Context, keys []string, now time.Time) ([]LoginThrottle, error)
	// RecordLoginFailure counts one failure at now against each key and
	// returns the counters afterwards, in the order of keys. Each key is
	// one atomic upsert, so of many concurrent calls each is counted
	// exactly once and each learns a distinct count:
	//   - a key without a counter, or whose window has ended
	//     (WindowStart + window <= now), starts at Failures = 1 with
	//     WindowStart = now;
	//   - otherwise Failures goes up by one;
	//   - PriorFailures and PriorFailureAt are Failures and LastFailureAt
	//     as the row was just before (0 and nil when there was none),
	//     LastFailureAt = now, ExpiresAt = now + window.
	RecordLoginFailure(ctx context.Context, keys []string, now time.Time, window time.Duration) ([]LoginThrottle, error)
	// ForgiveLoginFailure takes one failure back from key's counter (not
	// below zero): for an attempt counted up front that turned out not to
	// be a failure. A key without a counter is not an error.
	ForgiveLoginFailure(ctx context.Context, key string) error
	// ClearLoginThrottle deletes key's counter. A key without one is not
	// an error.
	ClearLoginThrottle(ctx context.Context, key string) error
}

// LoginThrottle is the failure counter of one throttle key.
type LoginThrottle struct {
	Key           string
	Failures      int       // failures counted since WindowStart
	WindowStart   time.Time // the first failure of the current window
	LastFailureAt time.Time
	// PriorFailures and PriorFailureAt are what Failures and LastFailureAt
	// were just before the latest failure was counted, so that the caller
	// that counted it can judge it against the state it replaced even
	// when concurrent callers counted theirs in between its read and its
	// write. Set by RecordLoginFailure only.
	PriorFailures  int
	PriorFailureAt *time.Time
	// ExpiresAt is when the counter means nothing any more and may be
	// deleted: a window after the last failure.
	ExpiresAt time.Time
}

// AuditStore keeps the audit trail: who did what, when. It is append-only:
// the database rejects UPDATE on it (a trigger, on every backend), and rows
// leave only through DeleteAuditEventsBefore (retention).
type AuditStore interface {
	// AppendAuditEvents inserts events in order, in one statement: all of
	// them or none. The database assigns each its ID (the events' own ID
	// fields are ignored); IDs increase in the order given. Details are
	// stored as a JSON object.
	AppendAuditEvents(ctx context.Context, events []AuditEvent) error
	// ListAuditEvents returns the events that match every set field of f,
	// ordered by ID.
	ListAuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
	// DeleteAuditEventsBefore removes events whose Time is before t and
	// returns how many it removed.
	DeleteAuditEventsBefore(ctx context.Context, t time.Time) (int64, error)
}

// AuditEvent is one entry of the audit trail. Details must never hold
// secrets, tokens, codes or passwords: only identifiers and facts (reason,
// grant_type, scope, kid, jti...).
type AuditEvent struct {
	ID   int64 // assigned by the database, increasing
	Time time.Time
	Type string // e.g. "login.succeeded"; see package audit
	// Actor is who acted: "user:<id>", "client:<id>", "admin" (the CLI) or
	// "system" (the server on its own schedule).
	Actor     string
	SessionID string
	UserID    string
	ClientID  string
	IP        string
	UserAgent string
	// Details are stored as a JSON object and read back as encoding/json
	// decodes one (numbers as float64); an empty map reads back as nil.
	Details map[string]any
}

// AuditFilter selects audit events. Zero fields do not filter.
type AuditFilter struct {
	UserID    string
	ClientID  string
	SessionID string
	Types     []string  // any of these
	Since     time.Time // Time >= Since
	Until     time.Time // Time < Until
	AfterID   int64     // ID > AfterID, for paging
	Limit     int       // at most this many; 0 means no limit
}

// ConsentStore remembers which scopes a user granted to a client.
type ConsentStore interface {
	// GetConsent returns the user's consent for the client, or ErrNotFound.
	GetConsent(ctx context.Context, userID, clientID string) (Consent, error)
	// PutConsent inserts or replaces the consent for (UserID, ClientID).
	// On replace, CreatedAt of the existing row is kept.
	PutConsent(ctx context.Context, c Consent) error
	// ListUserConsents returns the user's consents ordered by ClientID.
	ListUserConsents(ctx context.Context, userID string) ([]Consent, error)
	// DeleteConsent removes the user's consent for the client, so that
	// the next authorization asks again. ErrNotFound if there was none.
	DeleteConsent(ctx context.Context, userID, clientID string) error
}

// BackchannelLogoutStore keeps the outbox of back-channel logouts: one row
// per client to tell that a login session ended. Rows are added by
// EndSession and EndUserSessions, in their transaction; a deliverer claims
// them, sends the logout token and records the outcome.
//
// A claim is a lease: it moves NextAttemptAt to leaseUntil and increments
// Attempts, so no other claimant sees the row until the lease runs out
// (the claimant died). The outcome is recorded only by the claim that is
// still current (Attempts unchanged since): a claimant whose lease ran out
// and was overtaken gets ErrConflict.
type BackchannelLogoutStore interface {
	// ClaimBackchannelLogouts claims up to limit rows that are neither
	// delivered nor failed and whose NextAttemptAt is at or before now,
	// earliest first: Attempts += 1, NextAttemptAt = leaseUntil. Of many
	// concurrent claimants each row goes to exactly one. It returns the
	// rows as claimed.
	ClaimBackchannelLogouts(ctx context.Context, now, leaseUntil time.Time, limit int) ([]BackchannelLogout, error)
	// BackchannelLogoutDelivered sets DeliveredAt = now and LastError = ""
	// on the row claimed with this attempt number. ErrNotFound if there is
	// no such row; ErrConflict if it is finished or claimed again since.
	BackchannelLogoutDelivered(ctx context.Context, id int64, attempt int, now time.Time) error
	// RetryBackchannelLogout records a failed attempt: NextAttemptAt =
	// next, LastError = lastErr. Errors as BackchannelLogoutDelivered.
	RetryBackchannelLogout(ctx context.Context, id int64, attempt int, next time.Time, lastErr string) error
	// BackchannelLogoutFailed gives up: FailedAt = now, LastError =
	// lastErr. Errors as BackchannelLogoutDelivered.
	BackchannelLogoutFailed(ctx context.Context, id int64, attempt int, now time.Time, lastErr string) error
	// ListBackchannelLogouts returns every row, ordered by ID.
	ListBackchannelLogouts(ctx context.Context) ([]BackchannelLogout, error)
}

// BackchannelLogout is one client to tell that a login session ended.
type BackchannelLogout struct {
	ID            int64 // assigned by the store
	SessionID     string
	UserID        string
	ClientID      string
	CreatedAt     time.Time
	NextAttemptAt time.Time
	Attempts      int // claims so far
	LastError     string
	DeliveredAt   *time.Time
	FailedAt      *time.Time // set when delivery was given up
}

// SigningKeyStore keeps signing keys. Private keys are stored as the caller
// hands them over: already encrypted.
//
// Every change to the signing_keys table, whoever makes it (a server, the
// CLI, an operator with psql), moves SigningKeysVersion on in the same
// transaction (a database trigger), and on Postgres also sends a
// notification that WatchSigningKeys delivers; that is how every instance
// learns of a rotation within seconds.
type SigningKeyStore interface {
	// CreateSigningKey inserts k. ErrAlreadyExists if the ID is taken, or if
	// k is active (or next) and another key with the same Algorithm is
	// already in that state (at most one active and one next key per
	// algorithm; this is how concurrent instances agree on who created the
	// first key).
	CreateSigningKey(ctx context.Context, k SigningKey) error
	// ListSigningKeys returns every key in every state, ordered by
	// CreatedAt, then ID.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// ChangeSigningKeys applies c in one transaction: all of it or none of
	// it. Instances serialize on it (Postgres: a transaction-scoped
	// advisory lock, taken first; SQLite: the database write lock), so a
	// plan made from a stale read fails its preconditions rather than
	// acting twice. The steps run in this order:
	//
	//  1. Revoke: each key becomes revoked, RevokedAt = c.At. ErrNotFound
	//     if a key does not exist, ErrConflict if it is already revoked.
	//  2. Promote: each key, which must be next (else ErrConflict;
	//     ErrNotFound if missing), becomes active with ActivatedAt = c.At;
	//     the active key of the same algorithm, if any, becomes retired
	//     with RetiredAt = c.At.
	//  3. Retire: each key, which must be active (else ErrConflict),
	//     becomes retired with RetiredAt = c.At, without a successor.
	//  4. Create: as CreateSigningKey (ErrAlreadyExists).
	//  5. Delete: each key, which must be retired or revoked (else
	//     ErrConflict; ErrNotFound if missing), is deleted.
	ChangeSigningKeys(ctx context.Context, c SigningKeyChanges) error
	// ReplaceSigningKeyCiphertext swaps a key's encrypted private key for
	// one under another key-encryption key, if it still equals old
	// (compare and swap): ErrConflict if it does not, ErrNotFound if the
	// key is gone.
	ReplaceSigningKeyCiphertext(ctx context.Context, id string, old, new []byte) error
	// SigningKeysVersion returns a number that changes whenever the
	// signing_keys table does.
	SigningKeysVersion(ctx context.Context) (int64, error)
	// WatchSigningKeys calls changed whenever the signing keys may have
	// changed: once when it starts listening (changes made before that are
	// not notified) and then for every notification, until ctx ends (it
	// returns ctx's error) or the connection fails (it returns that error;
	// the caller retries). Backends without notifications (SQLite) only
	// wait for ctx: callers poll SigningKeysVersion as well.
	WatchSigningKeys(ctx context.Context, changed func()) error
}

// SigningKeyChanges is one atomic step of the signing-key lifecycle; see
// SigningKeyStore.ChangeSigningKeys.
type SigningKeyChanges struct {
	At      time.Time
	Revoke  []string // ids
	Promote []string // ids of next keys
	Retire  []string // ids of active keys
	Create  []SigningKey
	Delete  []string // ids of retired or revoked keys
}

// User is a person who can sign in.
type User struct {
	ID            string
	Email         string // normalized to lower case by the caller
	EmailVerified bool
	Name          string
	PasswordHash  string // argon2id, PHC string format
	Disabled      bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Client is a registered OAuth client. Metadata is stored as one JSON
// document so that new RFC 7591 fields need no schema change.
type Client struct {
	ID         string
	SecretHash []byte // SHA-256 of the client secret; nil for public clients
	Metadata   ClientMetadata
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// ClientMetadata is the RFC 7591 client metadata Gatehouse understands, plus
// Gatehouse's own fields. JSON names are the RFC 7591 ones.
type ClientMetadata struct {
	ClientName              string   `json:"client_name,omitempty"`
	RedirectURIs            []string `json:"redirect_uris,omitempty"`
	PostLogoutRedirectURIs  []string `json:"post_logout_redirect_uris,omitempty"`
	GrantTypes              []string `json:"grant_types,omitempty"`
	ResponseTypes           []string `json:"response_types,omitempty"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
	ApplicationType         string   `json:"application_type,omitempty"` // "web" or "native"
	ClientURI               string   `json:"client_uri,omitempty"`
	LogoURI                 string   `json:"logo_uri,omitempty"`
	PolicyURI               string   `json:"policy_uri,omitempty"`
	TosURI                  string   `json:"tos_uri,omitempty"`
	Contacts                []string `json:"contacts,omitempty"`
	// SkipConsent is Gatehouse's field for first-party apps: the person is
	// never asked to consent to this client.
	SkipConsent bool `json:"skip_consent,omitempty"`
	// AccessTokenFormat is "jwt" (RFC 9068, the default) or "opaque" (a
	// reference token, meaningful only through introspection).
	AccessTokenFormat string `json:"access_token_format,omitempty"`
	// RefreshTokenIdleLifetime and RefreshTokenAbsoluteLifetime, in
	// seconds, override the server's refresh token lifetimes for this
	// client; 0 means the server default.
	RefreshTokenIdleLifetime     int64 `json:"refresh_token_idle_lifetime,omitempty"`
	RefreshTokenAbsoluteLifetime int64 `json:"refresh_token_absolute_lifetime,omitempty"`
	// AllowedResources are the resource indicators (RFC 8707, absolute
	// URIs) this client may request as the audience of its tokens.
	AllowedResources []string `json:"allowed_resources,omitempty"`
	// IDTokenSignedResponseAlg (OIDC Registration §2) is the algorithm
	// the client's ID tokens are signed with; empty means RS256.
	IDTokenSignedResponseAlg string `json:"id_token_signed_response_alg,omitempty"`
	// MaxSessionsPerUser overrides the server's concurrent-session limit
	// for sign-ins made for this client: nil means the server's, 0
	// unlimited, N at most N live login sessions per user.
	MaxSessionsPerUser *int `json:"max_sessions_per_user,omitempty"`
	// SessionLimitAction overrides the server's action at the limit:
	// "evict_oldest" or "refuse"; empty means the server's.
	SessionLimitAction string `json:"session_limit_action,omitempty"`
	// BackchannelLogoutURI is where the client receives logout tokens
	// (OIDC Back-Channel Logout 1.0 §2.2); empty when it takes none.
	BackchannelLogoutURI string `json:"backchannel_logout_uri,omitempty"`
	// BackchannelLogoutSessionRequired: the client needs the sid claim in
	// logout tokens. Gatehouse always sends it.
	BackchannelLogoutSessionRequired bool `json:"backchannel_logout_session_required,omitempty"`
}

// Session is a login session at the IdP. The browser holds a random secret
// in a cookie; only its hash is stored. ID is the public session id (the
// OIDC sid claim), unrelated to the secret.
type Session struct {
	ID         string
	SecretHash []byte
	UserID     string
	AuthTime   time.Time // when the person last authenticated
	AMR        []string  // authentication methods (RFC 8176), e.g. ["pwd"]
	IP         string
	UserAgent  string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time  // absolute expiry
	EndedAt    *time.Time // set by logout or revocation
}

// AuthRequest is an authorization request waiting for sign-in or consent.
// It holds the validated request parameters, so that the person cannot
// change them between steps.
type AuthRequest struct {
	IDHash              []byte
	ClientID            string
	RedirectURI         string
	Scopes              []string
	State               string
	Nonce               string
	CodeChallenge       string
	CodeChallengeMethod string
	Prompt              []string
	MaxAge              *int // seconds; nil when absent
	LoginHint           string
	UILocales           string
	// SessionID is the login session that satisfied this request, set by
	// SetAuthRequestLogin. LoginAt is when that sign-in happened.
	SessionID string
	LoginAt   *time.Time
	CreatedAt time.Time
	ExpiresAt time.Time
}

// AuthCode is an authorization code, bound to a client, a redirect URI and a
// PKCE challenge. GrantID is chosen when the code is issued; the grant row
// is created when the code is redeemed.
type AuthCode struct {
	CodeHash            []byte
	ClientID            string
	UserID              string
	SessionID           string
	GrantID             string
	RedirectURI         string
	Scopes              []string
	Nonce               string
	CodeChallenge       string
	CodeChallengeMethod string
	AuthTime            time.Time
	AMR                 []string
	CreatedAt           time.Time
	ExpiresAt           time.Time
	UsedAt              *time.Time
}

// Grant is what a user let a client do. Tokens issued under it carry its ID;
// revoking it ends them.
type Grant struct {
	ID       string
	UserID   string
	ClientID string
	// SessionID is the login session the grant was made in. Unless
	// Offline, the grant is bound to it: ending the session revokes it.
	SessionID string
	// Offline is set when the person granted offline_access: the grant
	// (and its refresh tokens) survives the end of its login session.
	Offline   bool
	Scopes    []string
	CreatedAt time.Time
	RevokedAt *time.Time
}

// Consent is the set of scopes a user granted to a client.
type Consent struct {
	UserID    string
	ClientID  string
	Scopes    []string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// KeyState is where a signing key is in its lifecycle.
type KeyState string

// Signing key states (see DESIGN.md, "Signing keys").
const (
	KeyNext    KeyState = "next"    // published, not yet signing
	KeyActive  KeyState = "active"  // signing
	KeyRetired KeyState = "retired" // published until its tokens expire
	KeyRevoked KeyState = "revoked" // never published or used again
)

// SigningKey is a key pair for signing tokens. The private key is encrypted
// by the keys package before it reaches storage.
type SigningKey struct {
	ID                  string // the JWK kid
	Algorithm           string // JWS alg, e.g. "RS256"
	State               KeyState
	PrivateKeyEncrypted []byte
	PublicJWK           []byte // the public key as a JWK JSON document
	CreatedAt           time.Time
	ActivatedAt         *time.Time
	RetiredAt           *time.Time
	RevokedAt           *time.Time
}

// RefreshToken is one member of a grant's family of refresh tokens. Only
// its hash is stored.
type RefreshToken struct {
	TokenHash []byte
	GrantID   string
	ClientID  string
	UserID    string
	Scopes    []string // the grant's scopes; a refresh can narrow only the access token's
	CreatedAt time.Time
	// ExpiresAt is the idle expiry: CreatedAt plus the idle lifetime.
	ExpiresAt time.Time
	// AbsoluteExpiresAt is the end of the whole family, copied from
	// predecessor to successor.
	AbsoluteExpiresAt time.Time
	// UsedAt and SuccessorHash are set when the token is spent.
	UsedAt        *time.Time
	SuccessorHash []byte
}

// AccessToken is an opaque (reference) access token. Only its hash is
// stored; it means something only through introspection and userinfo.
type AccessToken struct {
	TokenHash []byte
	GrantID   string // empty for machine (client_credentials) tokens
	ClientID  string
	Subject   string // the user, or the client for machine tokens
	Scopes    []string
	Audience  []string
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt *time.Time
}

// LogValue keeps the password hash out of logs: a user logs as its id,
// email and whether it is disabled.
func (u User) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", u.ID), slog.String("email", u.Email), slog.Bool("disabled", u.Disabled))
}

// LogValue keeps the secret hash out of logs.
func (c Client) LogValue() slog.Value {
	return slog.GroupValue(slog.String("client_id", c.ID), slog.String("client_name", c.Metadata.ClientName))
}

// LogValue keeps the cookie secret's hash out of logs.
func (s Session) LogValue() slog.Value {
	return slog.GroupValue(slog.String("sid", s.ID), slog.String("user_id", s.UserID))
}
