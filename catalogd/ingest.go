package catalogd

// ingestRoutes are uploads, audio replacement and takedowns.
func (s *Server) ingestRoutes() []route {
	return nil
}
