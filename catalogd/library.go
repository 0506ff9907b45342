package catalogd

// libraryRoutes are playlists, likes, follows and listening events.
func (s *Server) libraryRoutes() []route {
	return nil
}
