package edge

import (
	"net/http"

	"riff/edge/cache"
	"riff/edge/disk"
)

// The disk tier (package disk) seen from the edge: metadata converted at
// the boundary, generations restored from its purge log.

func diskMeta(m *cache.Meta) disk.Meta {
	return disk.Meta{Size: m.Size, ETag: m.ETag, ContentType: m.ContentType, LastModified: m.LastModified}
}

func cacheMeta(m disk.Meta) *cache.Meta {
	out := &cache.Meta{Size: m.Size, ETag: m.ETag, ContentType: m.ContentType, LastModified: m.LastModified}
	if m.LastModified != "" {
		out.Modified, _ = http.ParseTime(m.LastModified)
	}
	return out
}

// generationsFrom restores the purge generations the disk store recorded
// (a new Generations without one).
func generationsFrom(d *disk.Store) (*cache.Generations, error) {
	if d == nil {
		return cache.NewGenerations(), nil
	}
	p := d.Purges()
	return cache.RestoreGenerations(p.Seq, p.Floor, p.Prefixes)
}

// recordPurges makes purges durable in the disk tier, if there is one.
func (s *Server) recordPurges(prefixes []string, gens []uint64) error {
	if s.disk == nil {
		return nil
	}
	ps := make([]disk.Purge, len(prefixes))
	for i, p := range prefixes {
		ps[i] = disk.Purge{Prefix: p, Gen: gens[i]}
	}
	return s.disk.RecordPurges(ps)
}
