package distributor

// IndexFootprint returns how many object ID runs and object records the
// node's index holds (for tests of its memory).
func (s *Server) IndexFootprint() (runs, records int) { return s.index.footprint() }
