package packager

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"
)

// dashRep is one Representation of the MPD.
type dashRep struct {
	id        string // e.g. "aac_128"
	uri       string // relative BaseURL, e.g. "aac_128.mp4"
	bandwidth int    // bits/s
	lay       *layout
}

// buildMPD writes a static on-demand MPD with one audio AdaptationSet and
// one SegmentBase Representation per CMAF file. Times come from the first
// representation (all share the sample rate and fragment plan).
func buildMPD(reps []dashRep, duration float64, maxSegment float64) ([]byte, error) {
	if len(reps) == 0 {
		return nil, fmt.Errorf("mpd: no representations")
	}
	m := mpd.NewMPD(mpd.STATIC_TYPE)
	m.Profiles = mpd.PROFILE_ONDEMAND
	m.MediaPresentationDuration = durPtr(duration)
	// Every representation's bandwidth is its peak segment bitrate, so one
	// segment's worth of buffer is enough to play without stalling.
	m.MinBufferTime = durPtr(math.Ceil(maxSegment))
	m.MaxSubsegmentDuration = durPtr(maxSegment)

	p := mpd.NewPeriod()
	p.Id = "0"
	m.AppendPeriod(p)

	first := reps[0].lay
	as := mpd.NewAdaptationSetWithParams("audio", mpd.MIME_TYPE_AUDIO_MP4, false, 0)
	as.Id = mpd.Ptr(uint32(0))
	as.Lang = "und"
	as.Codecs = aacCodecs
	as.AudioSamplingRate = mpd.Ptr(mpd.UIntVectorType(strconv.Itoa(int(first.SampleRate))))
	as.SubsegmentAlignment = true
	as.SubsegmentStartsWithSAP = 1
	as.AudioChannelConfigurations = []*mpd.DescriptorType{
		mpd.NewDescriptor(mpd.AUDIO_CHANNEL_CONFIGURATION_MPEG_DASH, strconv.Itoa(first.Channels), ""),
	}
	p.AppendAdaptationSet(as)

	for _, r := range reps {
		l := r.lay
		if l.SampleRate != first.SampleRate || l.Channels != first.Channels {
			return nil, fmt.Errorf("mpd: %s is %d Hz/%d ch, %s is %d Hz/%d ch", r.id, l.SampleRate, l.Channels, reps[0].id, first.SampleRate, first.Channels)
		}
		rep := mpd.NewRepresentation()
		rep.Id = r.id
		rep.Bandwidth = uint32(r.bandwidth)
		rep.BaseURLs = []*mpd.BaseURLType{mpd.NewBaseURL(r.uri)}
		rep.SegmentBase = &mpd.SegmentBaseType{
			Timescale: mpd.Ptr(l.SampleRate),
			// Media time `Priming` is presentation time 0 (the CMAF edit
			// list says the same; DASH players read this instead).
			PresentationTimeOffset: mpd.Ptr(l.Priming),
			IndexRange:             fmt.Sprintf("%d-%d", l.SidxOffset, l.SidxOffset+l.SidxSize-1),
			IndexRangeExact:        true,
			Initialization:         &mpd.URLType{Range: fmt.Sprintf("0-%d", l.InitSize-1)},
		}
		if l.Priming == 0 {
			rep.SegmentBase.PresentationTimeOffset = nil
		}
		as.AppendRepresentation(rep)
	}
	out, err := m.WriteToString("  ", true)
	if err != nil {
		return nil, fmt.Errorf("mpd: %w", err)
	}
	return []byte(out), nil
}

func durPtr(seconds float64) *mpd.Duration {
	d := mpd.Duration(time.Duration(math.Round(seconds*1000)) * time.Millisecond)
	return &d
}
