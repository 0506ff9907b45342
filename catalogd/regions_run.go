package catalogd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"

	"riff/catalogd/regions"
	"riff/catalogd/replicate"
	"riff/catalogd/store"
	"riff/internal/blob"
)

// addRegionFlags declares the regions flags on fs.
func addRegionFlags(fs *flag.FlagSet) (file, header, trusted *string) {
	file = fs.String("regions", "", "regions `file` (YAML; see configs/regions.yaml): playback URLs on the listener's region, replication to every region, purges to every region's edges (default: one region, -edge-url)")
	header = fs.String("region-header", "", "`header` in which the load balancer names the listener's region or country (honoured only from -trusted-proxies)")
	trusted = fs.String("trusted-proxies", "", "comma-separated `CIDRs` of the load balancers whose -region-header is believed")
	return file, header, trusted
}

// loadRegions checks the regions flags: the file, the header and the
// trusted peers, and the blob store (with a regions file, catalogd's store
// is the home region's; a -blob given as well must name the same one). It
// returns nil regions without -regions.
func loadRegions(fs *flag.FlagSet, file, header, trusted, blobURL string) (*regions.Chooser, string, error) {
	if file == "" {
		if header != "" {
			return nil, "", errors.New("catalogd: -region-header needs -regions")
		}
		return nil, blobURL, nil
	}
	set, err := regions.Load(file)
	if err != nil {
		return nil, "", fmt.Errorf("catalogd: -regions: %w", err)
	}
	cidrs, err := regions.ParseCIDRs(trusted)
	if err != nil {
		return nil, "", fmt.Errorf("catalogd: -trusted-proxies: %w", err)
	}
	if header != "" && len(cidrs) == 0 {
		return nil, "", errors.New("catalogd: -region-header needs -trusted-proxies (else any listener could pick its region)")
	}
	home := set.Region(set.Home()).Blob
	blobSet := false
	fs.Visit(func(f *flag.Flag) { blobSet = blobSet || f.Name == "blob" })
	if blobSet && blobURL != home {
		return nil, "", fmt.Errorf("catalogd: -blob %s is not the home region's (%s: %s); leave -blob out with -regions", blobURL, set.Home(), home)
	}
	return &regions.Chooser{Set: set, Header: header, Trusted: cidrs}, home, nil
}

// buildReplication opens every other region's blob store and makes the
// replication dispatcher (nil with fewer than two regions).
func (d *daemon) buildReplication(ctx context.Context) error {
	ch := d.cfg.server.Regions
	if ch == nil || len(ch.Set.Names()) < 2 {
		return nil
	}
	var targets []replicate.Target
	for _, r := range ch.Set.Regions() {
		if r.Name == ch.Set.Home() {
			continue
		}
		bs, err := blob.Open(ctx, r.Blob)
		if err != nil {
			return fmt.Errorf("catalogd: region %s: %w", r.Name, err)
		}
		d.regionBlobs = append(d.regionBlobs, bs)
		targets = append(targets, replicate.Target{Name: r.Name, Store: bs})
	}
	rc := replicate.Config{Source: d.blob, Targets: targets}
	if d.store.Dialect() == store.Postgres {
		rc.Lease, rc.LeaseTTL = d.store, d.cfg.purgeLease
	}
	var err error
	if d.replication, err = replicate.New(d.obs, d.store, rc); err != nil {
		return fmt.Errorf("catalogd: %w", err)
	}
	d.obs.AddDetail("replication", d.replication.Detail)
	d.obs.AddCheck("replication", d.replication.Ready)
	return nil
}

// purgeTargets is -purge-edges plus every region's purge endpoints, each
// once: every edge of every region gets every purge.
func purgeTargets(flagEdges []string, ch *regions.Chooser) []string {
	if ch == nil {
		return flagEdges
	}
	var out []string
	for _, e := range flagEdges {
		if e = strings.TrimSuffix(strings.TrimSpace(e), "/"); !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	for _, e := range ch.Set.PurgeEdges() {
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}
