package clients

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/secrets"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// Options are the Service's dependencies. Zero values are replaced by
// defaults.
type Options struct {
	Now func() time.Time // default time.Now
	// Rand supplies client ids and secrets; it must be safe for
	// concurrent use if the Service is. Default crypto/rand.Reader.
	Rand   io.Reader
	Logger *slog.Logger // default: discards
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
	return o
}

// Service registers, reads and deletes OAuth clients. It is safe for
// concurrent use.
type Service struct {
	store storage.ClientStore
	opts  Options
}

// New returns a Service over store.
func New(store storage.ClientStore, opts Options) *Service {
	return &Service{store: store, opts: opts.withDefaults()}
}

// Registration is a newly registered client and, for a confidential client,
// its secret in the clear: the only time it exists outside the client.
// Its JSON form is the RFC 7591 §3.2.1 client information response; its
// String and LogValue forms leave the secret out.
type Registration struct {
	Client storage.Client
	Secret string // empty for public clients
}

// registrationResponse is RFC 7591 §3.2.1: the client identifier, the
// secret and its expiry for confidential clients, and all registered
// metadata including defaults the server applied.
type registrationResponse struct {
	ClientID         string `json:"client_id"`
	ClientSecret     string `json:"client_secret,omitempty"`
	ClientIDIssuedAt int64  `json:"client_id_issued_at"`
	// "REQUIRED if client_secret is issued": 0 means it does not expire.
	ClientSecretExpiresAt *int64 `json:"client_secret_expires_at,omitempty"`
	storage.ClientMetadata
}

// MarshalJSON returns the RFC 7591 §3.2.1 response, secret included.
func (r Registration) MarshalJSON() ([]byte, error) {
	resp := registrationResponse{
		ClientID:         r.Client.ID,
		ClientIDIssuedAt: r.Client.CreatedAt.Unix(),
		ClientMetadata:   r.Client.Metadata,
	}
	if r.Secret != "" {
		var never int64
		resp.ClientSecret = r.Secret
		resp.ClientSecretExpiresAt = &never
	}
	return json.Marshal(resp)
}

// String describes the registration without its secret, so that %v in a
// log line or error does not leak it.
func (r Registration) String() string {
	return fmt.Sprintf("clients.Registration{client_id=%s confidential=%t secret=REDACTED}",
		r.Client.ID, len(r.Client.SecretHash) > 0)
}

// GoString keeps %#v from printing the secret.
func (r Registration) GoString() string { return r.String() }

// LogValue logs the registration without its secret.
func (r Registration) LogValue() slog.Value { return LogValue(r.Client) }

// LogValue returns c as a log value without its secret hash.
func LogValue(c storage.Client) slog.Value {
	return slog.GroupValue(
		slog.String("client_id", c.ID),
		slog.String("client_name", c.Metadata.ClientName),
		slog.Bool("confidential", len(c.SecretHash) > 0),
		slog.Any("grant_types", c.Metadata.GrantTypes),
	)
}

// Register validates md (see Validate), applies defaults, and stores a new
// client with a fresh client_id and, unless token_endpoint_auth_method is
// "none", a fresh 256-bit secret of which only the SHA-256 is stored.
// Invalid metadata is a *RegistrationError.
func (s *Service) Register(ctx context.Context, md storage.ClientMetadata) (Registration, error) {
	md, err := Validate(md)
	if err != nil {
		return Registration{}, err
	}
	id, err := secrets.NewID(s.opts.Rand)
	if err != nil {
		return Registration{}, fmt.Errorf("register client: new id: %w", err)
	}
	// Storage keeps microseconds; return what a later Get returns.
	now := s.opts.Now().UTC().Truncate(time.Microsecond)
	reg := Registration{Client: storage.Client{
		ID:        id,
		Metadata:  md,
		CreatedAt: now,
		UpdatedAt: now,
	}}
	if IsConfidential(md) {
		// RFC 7591 §3.2.1: client_secret for confidential clients. A
		// 256-bit random value needs no password hash (DESIGN.md, Scale).
		if reg.Secret, err = secrets.New(s.opts.Rand); err != nil {
			return Registration{}, fmt.Errorf("register client: new secret: %w", err)
		}
		reg.Client.SecretHash = secrets.Hash(reg.Secret)
	}
	if err := s.store.CreateClient(ctx, reg.Client); err != nil {
		return Registration{}, fmt.Errorf("register client %q: %w", id, err)
	}
	s.opts.Logger.InfoContext(ctx, "client registered", "client", LogValue(reg.Client))
	return reg, nil
}

// Get returns the client with this id; errors wrap storage.ErrNotFound when
// there is none.
func (s *Service) Get(ctx context.Context, id string) (storage.Client, error) {
	c, err := s.store.GetClient(ctx, id)
	if err != nil {
		return storage.Client{}, fmt.Errorf("get client %q: %w", id, err)
	}
	return c, nil
}

// List returns all clients, oldest first.
func (s *Service) List(ctx context.Context) ([]storage.Client, error) {
	cs, err := s.store.ListClients(ctx)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	return cs, nil
}

// Delete removes the client and everything issued to it (see
// storage.ClientStore.DeleteClient); errors wrap storage.ErrNotFound when
// there is no such client.
func (s *Service) Delete(ctx context.Context, id string) error {
	if err := s.store.DeleteClient(ctx, id); err != nil {
		return fmt.Errorf("delete client %q: %w", id, err)
	}
	s.opts.Logger.InfoContext(ctx, "client deleted", "client_id", id)
	return nil
}

var _ interface {
	json.Marshaler
	fmt.Stringer
	fmt.GoStringer
	slog.LogValuer
} = Registration{}
