package users_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/users"
)

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

type fixture struct {
	store storage.Store
	svc   *users.Service
	logs  *bytes.Buffer
}

func newFixture(t *testing.T, open opener) fixture {
	t.Helper()
	f := fixture{store: open(t), logs: new(bytes.Buffer)}
	f.svc = users.New(f.store, users.Options{
		Now:    func() time.Time { return epoch },
		Rand:   seeded(7),
		Logger: slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Params: cheap,
	})
	return f
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestCreate(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		f := newFixture(t, open)
		ctx := t.Context()
		u, err := f.svc.Create(ctx, users.CreateUser{
			Email:    "  Ada.Lovelace@Example.COM ",
			Name:     "  Ada Lovelace\t",
			Password: "analytical engine",
		})
		if err != nil {
			t.Fatal(err)
		}
		if !uuidV4.MatchString(u.ID) {
			t.Errorf("ID = %q, want a v4 UUID", u.ID)
		}
		want := storage.User{
			ID:           u.ID,
			Email:        "ada.lovelace@example.com",
			Name:         "Ada Lovelace",
			PasswordHash: u.PasswordHash,
			CreatedAt:    epoch.Truncate(time.Microsecond),
			UpdatedAt:    epoch.Truncate(time.Microsecond),
		}
		if u != want {
			t.Errorf("Create = %+v\nwant %+v", u, want)
		}
		if !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=64,t=1,p=1$") {
			t.Errorf("PasswordHash = %q, want argon2id with the service's parameters", u.PasswordHash)
		}
		if ok, err := users.VerifyPassword(u.PasswordHash, "analytical engine"); !ok || err != nil {
			t.Errorf("stored hash does not verify the password: %v, %v", ok, err)
		}

		got, err := f.svc.Get(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got != u {
			t.Errorf("Get = %+v\nwant %+v", got, u)
		}
		if _, err := f.svc.Get(ctx, "00000000-0000-4000-8000-000000000000"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Get(unknown) error = %v, want ErrNotFound", err)
		}

		u2, err := f.svc.Create(ctx, users.CreateUser{Email: "grace@example.com", Password: "cobol-1959"})
		if err != nil {
			t.Fatal(err)
		}
		if u2.Name != "" {
			t.Errorf("Name = %q, want empty: the name is optional", u2.Name)
		}
		list, err := f.svc.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 {
			t.Fatalf("List returned %d users, want 2", len(list))
		}
		ids := map[string]bool{list[0].ID: true, list[1].ID: true}
		if !ids[u.ID] || !ids[u2.ID] {
			t.Errorf("List = %v, want users %s and %s", ids, u.ID, u2.ID)
		}
	})
}

func TestCreateValidation(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		valid := users.CreateUser{Email: "a@example.com", Name: "A", Password: "password1"}
		tests := []struct {
			name  string
			edit  func(*users.CreateUser)
			field string // "" means valid
		}{
			{"valid", func(*users.CreateUser) {}, ""},
			{"email missing", func(c *users.CreateUser) { c.Email = "" }, "email"},
			{"email blank", func(c *users.CreateUser) { c.Email = "   " }, "email"},
			{"email without @", func(c *users.CreateUser) { c.Email = "not-an-email" }, "email"},
			{"email with display name", func(c *users.CreateUser) { c.Email = "Ada <ada@example.com>" }, "email"},
			{"email in angle brackets", func(c *users.CreateUser) { c.Email = "<ada@example.com>" }, "email"},
			{"email with comment", func(c *users.CreateUser) { c.Email = "ada@example.com (Ada)" }, "email"},
			{"two emails", func(c *users.CreateUser) { c.Email = "a@example.com, b@example.com" }, "email"},
			{"email with newline", func(c *users.CreateUser) { c.Email = "a@example.com\nBcc: b@example.com" }, "email"},
			{"email invalid UTF-8", func(c *users.CreateUser) { c.Email = "a\xff@example.com" }, "email"},
			{"email 254 bytes", func(c *users.CreateUser) { c.Email = emailOfLen(254) }, ""},
			{"email 255 bytes", func(c *users.CreateUser) { c.Email = emailOfLen(255) }, "email"},
			{"name 200 characters", func(c *users.CreateUser) { c.Name = strings.Repeat("é", 200) }, ""},
			{"name 201 characters", func(c *users.CreateUser) { c.Name = strings.Repeat("é", 201) }, "name"},
			{"name with newline", func(c *users.CreateUser) { c.Name = "Ada\nLovelace" }, "name"},
			{"name invalid UTF-8", func(c *users.CreateUser) { c.Name = "Ada\xff" }, "name"},
			{"password missing", func(c *users.CreateUser) { c.Password = "" }, "password"},
			{"password 7 characters", func(c *users.CreateUser) { c.Password = "hunter2" }, "password"},
			{"password 8 characters", func(c *users.CreateUser) { c.Password = "password" }, ""},
			{"password 7 characters in 14 bytes", func(c *users.CreateUser) { c.Password = strings.Repeat("é", 7) }, "password"},
			{"password 8 multibyte characters", func(c *users.CreateUser) { c.Password = strings.Repeat("é", 8) }, ""},
			{"password 1024 bytes", func(c *users.CreateUser) { c.Password = strings.Repeat("x", 1024) }, ""},
			{"password 1025 bytes", func(c *users.CreateUser) { c.Password = strings.Repeat("x", 1025) }, "password"},
			{"password invalid UTF-8", func(c *users.CreateUser) { c.Password = "password\xff" }, "password"},
		}
		// One database for all cases; each valid one adds a user.
		f := newFixture(t, open)
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				in := valid
				in.Email = fmt.Sprintf("user%d@example.com", i)
				tt.edit(&in)
				before, err := f.svc.List(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				_, err = f.svc.Create(t.Context(), in)
				if tt.field == "" {
					if err != nil {
						t.Fatalf("Create error = %v, want success", err)
					}
					return
				}
				var ve *users.ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("Create error = %v (%T), want *ValidationError", err, err)
				}
				if ve.Field != tt.field {
					t.Errorf("Field = %q, want %q (error %q)", ve.Field, tt.field, err)
				}
				if !strings.HasPrefix(err.Error(), tt.field+": ") {
					t.Errorf("error %q does not name the field first", err)
				}
				if in.Password != "" && strings.Contains(err.Error(), in.Password) {
					t.Errorf("error %q contains the password", err)
				}
				if after, err := f.svc.List(t.Context()); err != nil || len(after) != len(before) {
					t.Errorf("a validation error stored a user: %d users before, %d after (%v)", len(before), len(after), err)
				}
			})
		}
	})
}

// emailOfLen returns a valid-looking address of n bytes.
func emailOfLen(n int) string {
	const domain = "@example.com"
	return strings.Repeat("a", n-len(domain)) + domain
}

func TestCreateDuplicateEmail(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		f := newFixture(t, open)
		ctx := t.Context()
		if _, err := f.svc.Create(ctx, users.CreateUser{Email: "ada@example.com", Password: "password1"}); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.Create(ctx, users.CreateUser{Email: " ADA@example.com", Password: "password2"})
		if !errors.Is(err, storage.ErrAlreadyExists) {
			t.Fatalf("Create(same email, other case) error = %v, want ErrAlreadyExists", err)
		}
		if !strings.Contains(err.Error(), `"ada@example.com" already exists`) {
			t.Errorf("error %q does not say which email exists", err)
		}
	})
}

func TestCreateStorageFailure(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		f := newFixture(t, open)
		f.store.Close()
		_, err := f.svc.Create(t.Context(), users.CreateUser{Email: "ada@example.com", Password: "password1"})
		var ve *users.ValidationError
		if err == nil || errors.As(err, &ve) || errors.Is(err, storage.ErrAlreadyExists) {
			t.Errorf("Create on a closed store error = %v, want a storage failure", err)
		}
	})
}

func TestAuthenticate(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		f := newFixture(t, open)
		ctx := t.Context()
		const pw = "correct horse battery staple"
		ada, err := f.svc.Create(ctx, users.CreateUser{Email: "ada@example.com", Name: "Ada", Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		hash, err := users.HashPassword(pw, cheap, seeded(3))
		if err != nil {
			t.Fatal(err)
		}
		put := func(u storage.User) {
			t.Helper()
			u.CreatedAt, u.UpdatedAt = epoch, epoch
			if err := f.store.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		put(storage.User{ID: "disabled", Email: "disabled@example.com", PasswordHash: hash, Disabled: true})
		put(storage.User{ID: "nopassword", Email: "nopassword@example.com"})
		put(storage.User{ID: "corrupt", Email: "corrupt@example.com", PasswordHash: "$argon2id$v=19$m=4294967295,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})

		tests := []struct {
			name     string
			email    string
			password string
			wantID   string // success
			wantErr  error  // ErrInvalidCredentials, or nil for "some other error"
		}{
			{"right password", "ada@example.com", pw, ada.ID, nil},
			{"email case and spaces ignored", " Ada@Example.com ", pw, ada.ID, nil},
			{"wrong password", "ada@example.com", pw + "!", "", users.ErrInvalidCredentials},
			{"empty password", "ada@example.com", "", "", users.ErrInvalidCredentials},
			{"password over the limit", "ada@example.com", strings.Repeat("x", 1025), "", users.ErrInvalidCredentials},
			{"unknown email", "nobody@example.com", pw, "", users.ErrInvalidCredentials},
			{"empty email", "", pw, "", users.ErrInvalidCredentials},
			{"overlong email", strings.Repeat("a", 300) + "@example.com", pw, "", users.ErrInvalidCredentials},
			{"disabled, right password", "disabled@example.com", pw, "", users.ErrInvalidCredentials},
			{"disabled, wrong password", "disabled@example.com", "nope-nope", "", users.ErrInvalidCredentials},
			{"no password set", "nopassword@example.com", "", "", users.ErrInvalidCredentials},
		}
		// reason and user id of each refusal
		wantReasons := map[string][2]string{
			"wrong password":           {users.ReasonBadPassword, ada.ID},
			"empty password":           {users.ReasonBadPassword, ada.ID},
			"password over the limit":  {users.ReasonBadPassword, ""},
			"unknown email":            {users.ReasonUnknownAccount, ""},
			"empty email":              {users.ReasonUnknownAccount, ""},
			"overlong email":           {users.ReasonUnknownAccount, ""},
			"disabled, right password": {users.ReasonDisabled, "disabled"},
			"disabled, wrong password": {users.ReasonBadPassword, "disabled"},
			"no password set":          {users.ReasonNoPassword, "nopassword"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				u, err := f.svc.Authenticate(ctx, tt.email, tt.password)
				if tt.wantID != "" {
					if err != nil || u.ID != tt.wantID {
						t.Fatalf("Authenticate = %q, %v; want %q, nil", u.ID, err, tt.wantID)
					}
					return
				}
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Authenticate error = %v, want %v", err, tt.wantErr)
				}
				if u != (storage.User{}) {
					t.Errorf("Authenticate returned user %q along with an error", u.ID)
				}
				if err.Error() != users.ErrInvalidCredentials.Error() {
					t.Errorf("error %q says more than ErrInvalidCredentials", err)
				}
				// Why, for the audit trail only.
				var ce *users.CredentialsError
				if want, ok := wantReasons[tt.name]; ok {
					if !errors.As(err, &ce) || ce.Reason != want[0] || ce.UserID != want[1] {
						t.Errorf("CredentialsError = %+v, want reason %q, user %q", ce, want[0], want[1])
					}
				}
			})
		}

		t.Run("corrupt stored hash is a server error", func(t *testing.T) {
			_, err := f.svc.Authenticate(ctx, "corrupt@example.com", pw)
			if err == nil || errors.Is(err, users.ErrInvalidCredentials) {
				t.Fatalf("Authenticate error = %v, want a server-side error, not ErrInvalidCredentials", err)
			}
			if !errors.Is(err, users.ErrMalformedHash) {
				t.Errorf("error = %v, want it to wrap ErrMalformedHash", err)
			}
		})

		if t.Failed() {
			return
		}
		// Whatever happened above, no password reached the log, and neither
		// did an unknown email (people type passwords into that field).
		logs := f.logs.String()
		for _, secret := range []string{pw, "nope-nope", "$argon2id", "nobody@example.com", hash} {
			if strings.Contains(logs, secret) {
				t.Errorf("log contains %q:\n%s", secret, logs)
			}
		}
		for _, reason := range []string{"wrong_password", "unknown_email", "disabled", "no_password"} {
			if !strings.Contains(logs, "reason="+reason) {
				t.Errorf("log does not record a failure with reason %s:\n%s", reason, logs)
			}
		}
	})
}

func TestAuthenticateStorageFailure(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		tests := []struct {
			name   string
			break_ func(context.Context, fixture) context.Context
		}{
			{"store closed", func(ctx context.Context, f fixture) context.Context {
				f.store.Close()
				return ctx
			}},
			{"context canceled", func(ctx context.Context, f fixture) context.Context {
				ctx, cancel := context.WithCancel(ctx)
				cancel()
				return ctx
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				f := newFixture(t, open)
				if _, err := f.svc.Create(t.Context(), users.CreateUser{Email: "ada@example.com", Password: "password1"}); err != nil {
					t.Fatal(err)
				}
				ctx := tt.break_(t.Context(), f)
				for _, email := range []string{"ada@example.com", "nobody@example.com"} {
					_, err := f.svc.Authenticate(ctx, email, "password1")
					if err == nil || errors.Is(err, users.ErrInvalidCredentials) {
						t.Errorf("Authenticate(%s) error = %v; a storage failure must not look like a wrong password", email, err)
					}
				}
			})
		}
	})
}

func TestLogValueOmitsPasswordHash(t *testing.T) {
	u := storage.User{ID: "u1", Email: "ada@example.com", PasswordHash: "$argon2id$v=19$secret"}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "user", users.LogValue(u))
	if strings.Contains(buf.String(), "argon2id") {
		t.Errorf("log line contains the password hash: %s", buf.String())
	}
	if !strings.Contains(buf.String(), `"id":"u1"`) {
		t.Errorf("log line lacks the user id: %s", buf.String())
	}
}

func ExampleValidationError() {
	err := error(&users.ValidationError{Field: "password", Message: "must be at least 8 characters"})
	var ve *users.ValidationError
	if errors.As(err, &ve) {
		fmt.Printf("invalid %s: %s\n", ve.Field, ve.Message)
	}
	// Output: invalid password: must be at least 8 characters
}
