package oauth

import (
	"encoding/json"
	"log/slog"
	"net/http"
)

// WriteJSON writes a token-endpoint style JSON response. RFC 6749 §5.1:
// responses carrying tokens MUST have Cache-Control: no-store.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// WriteTokenError writes an RFC 6749 §5.2 error. invalid_client is a 401
// with a WWW-Authenticate challenge (§5.2). Server-side causes are logged,
// never sent.
func WriteTokenError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, e *Error) {
	if e.Status >= 500 {
		logger.ErrorContext(r.Context(), "token endpoint failed", slog.String("error", e.Code), slog.Any("cause", e.Cause))
	}
	if e.Code == "invalid_client" {
		w.Header().Set("WWW-Authenticate", `Basic realm="gatehouse", charset="UTF-8"`)
	}
	WriteJSON(w, e.Status, errorBody{Error: e.Code, Description: WireDescription(e.Description)})
}
