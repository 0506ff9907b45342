package dev

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// devRegion is one region of `riff dev -regions N`: its own blob folder,
// origin and edge on loopback. The first is the home region, on the
// addresses of the -origin-listen, -edge-listen and -edge-admin-listen
// flags; the others on free ports.
type devRegion struct {
	Name                        string
	Blob                        string
	OriginListen                string
	EdgeListen, EdgeAdminListen string
	Countries                   []string
}

// regionNames and regionCountries name dev's regions (a sample of each's
// countries: a listener's profile country picks the region).
var (
	regionNames     = []string{"eu", "na", "apac"}
	regionCountries = [][]string{{"SE", "DE", "FR", "GB"}, {"US", "CA", "MX"}, {"JP", "AU", "SG"}}
)

// MaxRegions is the most regions riff dev runs.
const MaxRegions = 3

// planRegions returns s.Regions regions: the first on s's addresses and
// blob store, the others with blob folders under s.Data and free ports.
func planRegions(s Settings, homeBlob string) ([]devRegion, error) {
	rs := []devRegion{{Name: regionNames[0], Blob: homeBlob, OriginListen: s.OriginListen,
		EdgeListen: s.EdgeListen, EdgeAdminListen: s.EdgeAdminListen, Countries: regionCountries[0]}}
	for i := 1; i < s.Regions; i++ {
		r := devRegion{Name: regionNames[i], Blob: filepath.Join(s.Data, "blob-"+regionNames[i]), Countries: regionCountries[i]}
		for _, a := range []*string{&r.OriginListen, &r.EdgeListen, &r.EdgeAdminListen} {
			addr, err := resolveAddr("127.0.0.1:0")
			if err != nil {
				return nil, fmt.Errorf("dev: region %s: %w", r.Name, err)
			}
			*a = addr
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// writeRegionsFile writes catalogd's regions file for rs to path: the
// first region is home and default, each falls back to the home region
// (the home region to the second).
func writeRegionsFile(path string, rs []devRegion) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by riff dev -regions %d; rewritten at every start.\nhome: %s\ndefault: %s\nregions:\n", len(rs), rs[0].Name, rs[0].Name)
	for i, r := range rs {
		fallback := rs[0].Name
		if i == 0 {
			fallback = rs[1].Name
		}
		fmt.Fprintf(&b, "  - name: %s\n    edges: [http://%s]\n    purge: [http://%s]\n    blob: %q\n    countries: [%s]\n    fallback: [%s]\n",
			r.Name, r.EdgeListen, r.EdgeAdminListen, r.Blob, strings.Join(r.Countries, ", "), fallback)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
