//go:build race

package edge

// raceEnabled: the tests run under the race detector (see skipUnderRace).
const raceEnabled = true
