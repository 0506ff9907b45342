// Package regions holds catalogd's regions file and the choice of a
// listener's region.
//
// A region is a set of edges (the public base URLs players reach, and the
// admin URLs that take purges), an origin and a blob store; catalogd keeps
// one list of them in a YAML file (-regions, example in
// configs/regions.yaml):
//
//	home: eu          # where packagers write; the source of replication (default: default)
//	default: eu       # listeners nothing else places (default: the first region)
//	regions:
//	  - name: eu
//	    edges: [https://eu.edge.example.com]
//	    purge: [http://10.1.0.5:9082, http://10.1.0.6:9082]
//	    blob: s3://riff-eu?region=eu-west-1
//	    countries: [SE, DE, FR]
//	    fallback: [na]
//
// Parse checks the whole file and says what is wrong with which region:
// names are lower-case words, unique; edges and purge endpoints are
// http(s) URLs without query or credentials; a country is served by one
// region; fallback names existing regions other than the region itself.
//
// Choice (Chooser.Choose): the load balancer's header (Chooser.Header,
// holding a region's name or an ISO country code), honoured only from a
// peer in Chooser.Trusted; else the listener's profile country; else the
// default region. Set.Order then lists the chosen region, its fallbacks
// in their order, and the remaining regions in file order: the first of
// them that holds a song's version serves it, the next one is the
// player's fallback.
//
// The package imports no other catalogd package and no SQL or blob code:
// it is configuration and a pure function of a request.
package regions
