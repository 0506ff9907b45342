package catalogd

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is the OpenAPI 3.1 description of this API. docs/openapi.json
// is a copy kept equal by TestOpenAPIDocsCopy (go test -run OpenAPI
// -update rewrites it); TestOpenAPIMatchesRoutes checks it against the
// route table.
//
//go:embed openapi.json
var openAPIDoc []byte

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request, _ principal) error {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	_, err := w.Write(openAPIDoc)
	return err
}
