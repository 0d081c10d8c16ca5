package audit

// Event types. docs/operations.md ("Audit trail") lists what each carries.
const (
	// LoginSucceeded: a person signed in. UserID, SessionID (the new
	// session), ClientID of the authorization request if any.
	LoginSucceeded = "login.succeeded"
	// LoginFailed: a sign-in was refused. Details["reason"] is one of the
	// Reason constants. UserID is set when the account exists. The email
	// address that was typed is not recorded at all, not even hashed: an
	// address is personal data, an unsalted hash of one is reversible by
	// anyone with a list of addresses, and people type their password into
	// the email field. IP and user agent are enough to see an attack.
	LoginFailed = "login.failed"
	// ConsentGranted: a person let a client have scopes
	// (Details["scope"], space-separated, everything consented so far).
	ConsentGranted = "consent.granted"
	// ConsentRevoked: a person or an operator withdrew a consent.
	ConsentRevoked = "consent.revoked"
	// TokenIssued: the token endpoint issued tokens for an authorization
	// code or client credentials. Details: grant_type, grant_id (user
	// grants), scope, jti of a JWT access token.
	TokenIssued = "token.issued"
	// TokenRefreshed: a refresh token was rotated (refresh_token grant).
	TokenRefreshed = "token.refreshed"
	// TokenRevoked: the revocation endpoint revoked a token (Details:
	// kind, grant_id when the whole grant went).
	TokenRevoked = "token.revoked"
	// RefreshReuseDetected: a spent refresh token came back outside the
	// grace window; its whole grant was revoked.
	RefreshReuseDetected = "refresh.reuse_detected"
	// CodeReplayed: an authorization code was presented a second time;
	// the grant it issued was revoked.
	CodeReplayed = "code.replayed"
	// Logout: a person ended their session.
	Logout = "logout"
	// SessionRevoked: a session was ended by someone else than its owner
	// signing out (Details["by"]: "admin", "user", "password_change"...).
	SessionRevoked = "session.revoked"
	// SessionEvicted: a session was ended to respect a limit on sessions.
	SessionEvicted = "session.evicted"

	UserCreated     = "user.created"
	UserDisabled    = "user.disabled"
	UserEnabled     = "user.enabled"
	UserPasswordSet = "user.password_set"

	ClientCreated = "client.created"
	ClientDeleted = "client.deleted"

	// Signing keys (Details: kid, alg). KeyRotated is a next key that
	// started signing.
	KeyCreated = "key.created"
	KeyRotated = "key.rotated"
	KeyRetired = "key.retired"
	KeyRevoked = "key.revoked"
	KeyDeleted = "key.deleted"
)

// Types lists every event type, for validating filters.
func Types() []string {
	return []string{
		LoginSucceeded, LoginFailed, ConsentGranted, ConsentRevoked,
		TokenIssued, TokenRefreshed, TokenRevoked, RefreshReuseDetected, CodeReplayed,
		Logout, SessionRevoked, SessionEvicted,
		UserCreated, UserDisabled, UserEnabled, UserPasswordSet,
		ClientCreated, ClientDeleted,
		KeyCreated, KeyRotated, KeyRetired, KeyRevoked, KeyDeleted,
	}
}

// Reasons a sign-in fails (LoginFailed's Details["reason"]).
const (
	ReasonUnknownAccount = "unknown_account"
	ReasonBadPassword    = "bad_password"
	ReasonDisabled       = "disabled"
	// ReasonNoPassword: the account exists but has no password set.
	ReasonNoPassword = "no_password"
	// ReasonThrottled: too many failures for the email or the client IP;
	// the password was not checked (Details["retry_after"], seconds).
	ReasonThrottled = "throttled"
	// ReasonSessionLimit: the password was right, but the person has as
	// many sessions as allowed and the limit refuses new ones.
	ReasonSessionLimit = "session_limit"
)

// Actors.
const (
	// ActorAdmin is an operator using the CLI.
	ActorAdmin = "admin"
	// ActorSystem is the server acting on its own (the key schedule).
	ActorSystem = "system"
)

// User is the actor for a person: "user:<id>".
func User(id string) string { return "user:" + id }

// Client is the actor for a client authenticating on its own behalf:
// "client:<id>".
func Client(id string) string { return "client:" + id }
