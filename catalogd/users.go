package catalogd

import (
	"bytes"
	"encoding/json"
	"net/http"

	"riff/catalogd/store"
)

// maxPreferencesBytes caps the preferences object.
const maxPreferencesBytes = 8 << 10

func (s *Server) getMe(w http.ResponseWriter, r *http.Request, p principal) error {
	u, err := s.store.UserByID(r.Context(), p.UserID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, privateUser(u))
}

type patchMeRequest struct {
	DisplayName optional[string]          `json:"display_name"`
	AvatarURL   optional[string]          `json:"avatar_url"`
	Country     optional[string]          `json:"country"`
	Preferences optional[json.RawMessage] `json:"preferences"`
}

func (s *Server) patchMe(w http.ResponseWriter, r *http.Request, p principal) error {
	var req patchMeRequest
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	var pc patch
	up := store.ProfileUpdate{
		DisplayName: pc.name("display_name", req.DisplayName, checkDisplayName),
		AvatarURL:   patchField(&pc, req.AvatarURL, func(v string) *apiError { return checkURL("avatar_url", v) }), // null clears
		Country:     patchField(&pc, req.Country, checkCountry),
	}
	if pc.err != nil {
		return pc.err
	}
	if req.Preferences.set {
		prefs := []byte(req.Preferences.v)
		if req.Preferences.null {
			prefs = []byte("{}")
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, prefs); err != nil || compact.Len() == 0 || compact.Bytes()[0] != '{' {
			return invalidField("preferences", "invalid_type", "preferences must be a JSON object.")
		}
		if compact.Len() > maxPreferencesBytes {
			return invalidField("preferences", "too_long", "preferences must be at most %d bytes of JSON.", maxPreferencesBytes)
		}
		up.Preferences = compact.Bytes()
	}
	u, err := s.store.UpdateProfile(r.Context(), p.UserID, up)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, privateUser(u))
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, _ principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	u, err := s.store.UserByID(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, publicUser(u))
}
