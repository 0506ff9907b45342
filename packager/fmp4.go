package packager

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/Eyevinn/mp4ff/aac"
	"github.com/Eyevinn/mp4ff/bits"
	"github.com/Eyevinn/mp4ff/mp4"
)

// aacFrameSamples is the number of PCM samples in one AAC-LC access unit.
const aacFrameSamples = 1024

// aacTrack is one AAC rendition as ffmpeg wrote it: a progressive MP4 whose
// sample table tells where every access unit is and whose edit list tells
// how much encoder priming precedes the first real sample.
type aacTrack struct {
	sampleRate uint32 // also the media timescale
	channels   int
	asc        []byte // AudioSpecificConfig, copied verbatim into our esds
	priming    uint64 // encoder delay in samples (elst media_time)
	frames     []aacFrame
	total      uint64 // sum of frame durations = priming + presented samples
}

// aacFrame locates one access unit in the source file.
type aacFrame struct {
	off  int64
	size uint32
	dur  uint32
}

// presented is the number of samples a player presents: the media time
// after the priming.
func (t *aacTrack) presented() uint64 {
	if t.total < t.priming {
		return 0
	}
	return t.total - t.priming
}

// readAACTrack parses a progressive MP4 with exactly one AAC-LC track (what
// ffmpeg writes with -c:a aac -f mp4) and returns its frame table. The
// media data itself is not read.
func readAACTrack(rs io.ReadSeeker) (*aacTrack, error) {
	f, err := mp4.DecodeFile(rs, mp4.WithDecodeMode(mp4.DecModeLazyMdat))
	if err != nil {
		return nil, fmt.Errorf("decode mp4: %w", err)
	}
	if f.Moov == nil || len(f.Moov.Traks) != 1 {
		return nil, errors.New("want exactly one track in intermediate mp4")
	}
	trak := f.Moov.Trak
	if trak.Mdia == nil || trak.Mdia.Minf == nil || trak.Mdia.Minf.Stbl == nil {
		return nil, errors.New("intermediate mp4: incomplete trak")
	}
	stbl := trak.Mdia.Minf.Stbl
	if stbl.Stsd == nil || stbl.Stsd.Mp4a == nil || stbl.Stsd.Mp4a.Esds == nil {
		return nil, errors.New("intermediate mp4: no mp4a/esds sample entry")
	}
	dcd := stbl.Stsd.Mp4a.Esds.DecConfigDescriptor
	if dcd == nil || dcd.DecSpecificInfo == nil || len(dcd.DecSpecificInfo.DecConfig) == 0 {
		return nil, errors.New("intermediate mp4: esds has no AudioSpecificConfig")
	}
	ascBytes := dcd.DecSpecificInfo.DecConfig
	asc, err := aac.DecodeAudioSpecificConfig(bytes.NewReader(ascBytes))
	if err != nil {
		return nil, fmt.Errorf("intermediate mp4: AudioSpecificConfig: %w", err)
	}
	if asc.ObjectType != aac.AAClc {
		return nil, fmt.Errorf("intermediate mp4: AAC object type %d, want AAC-LC (2)", asc.ObjectType)
	}
	ts := trak.Mdia.Mdhd.Timescale
	if ts == 0 || int(ts) != asc.SamplingFrequency {
		return nil, fmt.Errorf("intermediate mp4: timescale %d does not match sample rate %d", ts, asc.SamplingFrequency)
	}
	t := &aacTrack{
		sampleRate: ts,
		channels:   int(asc.ChannelConfiguration),
		asc:        append([]byte(nil), ascBytes...),
	}
	if trak.Edts != nil && len(trak.Edts.Elst) == 1 && len(trak.Edts.Elst[0].Entries) == 1 {
		if mt := trak.Edts.Elst[0].Entries[0].MediaTime; mt > 0 {
			t.priming = uint64(mt)
		}
	}

	n := stbl.Stsz.GetNrSamples()
	if n == 0 {
		return nil, errors.New("intermediate mp4: no audio frames")
	}
	t.frames = make([]aacFrame, n)
	for i := uint32(1); i <= n; i++ {
		d := stbl.Stts.GetDur(i)
		if d == 0 || d > aacFrameSamples {
			return nil, fmt.Errorf("intermediate mp4: frame %d lasts %d samples, want 1..%d", i, d, aacFrameSamples)
		}
		if d != aacFrameSamples && i != n {
			return nil, fmt.Errorf("intermediate mp4: frame %d lasts %d samples; only the last may be short", i, d)
		}
		t.frames[i-1] = aacFrame{size: stbl.Stsz.GetSampleSize(int(i)), dur: d}
		t.total += uint64(d)
	}
	// Sample offsets: walk chunks (stsc) and their offsets (stco/co64).
	nrChunks := 0
	switch {
	case stbl.Stco != nil:
		nrChunks = len(stbl.Stco.ChunkOffset)
	case stbl.Co64 != nil:
		nrChunks = len(stbl.Co64.ChunkOffset)
	default:
		return nil, errors.New("intermediate mp4: no chunk offsets")
	}
	for c := 1; c <= nrChunks; c++ {
		chunk := stbl.Stsc.GetChunk(uint32(c))
		var off int64
		if stbl.Stco != nil {
			off = int64(stbl.Stco.ChunkOffset[c-1])
		} else {
			off = int64(stbl.Co64.ChunkOffset[c-1])
		}
		for s := chunk.StartSampleNr; s < chunk.StartSampleNr+chunk.NrSamples && s <= n; s++ {
			t.frames[s-1].off = off
			off += int64(t.frames[s-1].size)
		}
	}
	size, err := rs.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("intermediate mp4: %w", err)
	}
	for i, f := range t.frames {
		if f.off <= 0 || f.off+int64(f.size) > size {
			return nil, fmt.Errorf("intermediate mp4: frame %d at %d+%d lies outside the %d-byte file", i+1, f.off, f.size, size)
		}
	}
	return t, nil
}

// fragmentPlan returns the index of the first frame of every fragment.
//
// Cuts are computed in frames, so they fall on AAC access units, and only
// from the frame count, the priming and the target, so renditions with
// the same sample rate and length get identical cuts. The first fragment
// holds the priming frames plus one target, so every fragment but the last
// presents exactly target frames. A tail shorter than half a target is
// merged into the fragment before it.
func fragmentPlan(nFrames int, primingFrames int, targetFrames int) []int {
	if nFrames <= 0 {
		return nil
	}
	if targetFrames < 1 {
		targetFrames = 1
	}
	starts := []int{0}
	for next := primingFrames + targetFrames; next < nFrames; next += targetFrames {
		starts = append(starts, next)
	}
	if len(starts) > 1 {
		tail := nFrames - starts[len(starts)-1]
		if 2*tail < targetFrames {
			starts = starts[:len(starts)-1]
		}
	}
	return starts
}

// fragment describes one moof+mdat pair of a packaged rendition.
type fragment struct {
	Offset   int64  // byte offset of the moof in the file
	Size     int64  // moof + mdat size
	Start    uint64 // tfdt, media timescale
	Duration uint64 // sum of sample durations, media timescale
}

// layout is the byte map of a packaged CMAF rendition. It is what the
// playlists and the MPD are written from.
type layout struct {
	SampleRate uint32
	Channels   int
	Priming    uint64 // samples
	Presented  uint64 // samples, after priming
	InitSize   int64  // ftyp+moov, starting at 0
	SidxOffset int64
	SidxSize   int64
	Fragments  []fragment
	FileSize   int64
}

// presentationSpan returns fragment i's start and duration in presentation
// time (seconds × sample rate): media time minus priming, clipped to the
// presented range.
func (l *layout) presentationSpan(i int) (start, dur uint64) {
	f := l.Fragments[i]
	s := clipSub(f.Start, l.Priming, l.Presented)
	e := clipSub(f.Start+f.Duration, l.Priming, l.Presented)
	return s, e - s
}

func clipSub(t, off, max uint64) uint64 {
	if t < off {
		return 0
	}
	if t-off > max {
		return max
	}
	return t - off
}

// writeCMAF writes src's frames as one single-file CMAF track to w:
// ftyp+moov (with an edit list for the priming), one sidx, then one
// moof+mdat per planned fragment. Frame data is read from r.
func writeCMAF(w io.WriterAt, r io.ReaderAt, src *aacTrack, starts []int) (*layout, error) {
	if len(starts) == 0 || starts[0] != 0 {
		return nil, errors.New("fragment plan must start at frame 0")
	}
	init, err := buildInit(src)
	if err != nil {
		return nil, err
	}
	var ibuf bytes.Buffer
	if err := init.Encode(&ibuf); err != nil {
		return nil, fmt.Errorf("encode init: %w", err)
	}
	lay := &layout{
		SampleRate: src.sampleRate,
		Channels:   src.channels,
		Priming:    src.priming,
		Presented:  src.presented(),
		InitSize:   int64(ibuf.Len()),
	}
	if _, err := w.WriteAt(ibuf.Bytes(), 0); err != nil {
		return nil, fmt.Errorf("write init: %w", err)
	}

	// The sidx size depends only on the number of references, so reserve
	// its place now and fill it in once the fragment sizes are known.
	sidx := &mp4.SidxBox{
		ReferenceID: 1,
		Timescale:   src.sampleRate,
		SidxRefs:    make([]mp4.SidxRef, len(starts)),
	}
	if src.total >= math.MaxUint32 {
		sidx.Version = 1
	}
	lay.SidxOffset = lay.InitSize
	lay.SidxSize = int64(sidx.Size())
	pos := lay.SidxOffset + lay.SidxSize

	var (
		decodeTime uint64
		data       []byte // frame data of one fragment, reused
		obuf       []byte // encoded fragment, reused
	)
	for fi, first := range starts {
		end := len(src.frames)
		if fi+1 < len(starts) {
			end = starts[fi+1]
		}
		frames := src.frames[first:end]
		frag, err := mp4.CreateFragment(uint32(fi+1), 1)
		if err != nil {
			return nil, fmt.Errorf("create fragment: %w", err)
		}
		samples := make([]mp4.Sample, len(frames))
		var dataSize, dur uint64
		for i, fr := range frames {
			samples[i] = mp4.Sample{Flags: mp4.SyncSampleFlags, Dur: fr.dur, Size: fr.size}
			dataSize += uint64(fr.size)
			dur += uint64(fr.dur)
		}
		if cap(data) < int(dataSize) {
			data = make([]byte, dataSize)
		}
		data = data[:dataSize]
		if err := readFrames(r, frames, data); err != nil {
			return nil, err
		}
		frag.AddSamples(samples, decodeTime)
		frag.Mdat.SetData(data)
		// Move the common duration/flags to tfhd before sizing: Size()
		// must describe exactly what EncodeSW writes.
		if err := frag.Moof.Traf.OptimizeTfhdTrun(); err != nil {
			return nil, fmt.Errorf("fragment %d: %w", fi, err)
		}
		size := frag.Size()
		if size > math.MaxInt32 {
			return nil, fmt.Errorf("fragment %d too large (%d bytes)", fi, size)
		}
		if cap(obuf) < int(size) {
			obuf = make([]byte, size)
		}
		out := bits.NewFixedSliceWriterFromSlice(obuf[:size])
		if err := frag.EncodeSW(out); err != nil {
			return nil, fmt.Errorf("encode fragment %d: %w", fi, err)
		}
		if out.Len() != int(size) {
			return nil, fmt.Errorf("fragment %d encoded to %d bytes, sized %d", fi, out.Len(), size)
		}
		if _, err := w.WriteAt(out.Bytes(), pos); err != nil {
			return nil, fmt.Errorf("write fragment %d: %w", fi, err)
		}
		lay.Fragments = append(lay.Fragments, fragment{Offset: pos, Size: int64(size), Start: decodeTime, Duration: dur})
		sidx.SidxRefs[fi] = mp4.SidxRef{
			ReferencedSize:     uint32(size),
			SubSegmentDuration: uint32(dur),
			StartsWithSAP:      1,
			SAPType:            1,
		}
		pos += int64(size)
		decodeTime += dur
	}
	var sbuf bytes.Buffer
	if err := sidx.Encode(&sbuf); err != nil {
		return nil, fmt.Errorf("encode sidx: %w", err)
	}
	if int64(sbuf.Len()) != lay.SidxSize {
		return nil, fmt.Errorf("sidx is %d bytes, reserved %d", sbuf.Len(), lay.SidxSize)
	}
	if _, err := w.WriteAt(sbuf.Bytes(), lay.SidxOffset); err != nil {
		return nil, fmt.Errorf("write sidx: %w", err)
	}
	lay.FileSize = pos
	return lay, nil
}

// readFrames fills dst with the data of consecutive frames, reading each
// contiguous run with one ReadAt.
func readFrames(r io.ReaderAt, frames []aacFrame, dst []byte) error {
	pos := 0
	for i := 0; i < len(frames); {
		runStart := frames[i].off
		runLen := int64(frames[i].size)
		j := i + 1
		for j < len(frames) && frames[j].off == runStart+runLen {
			runLen += int64(frames[j].size)
			j++
		}
		if _, err := r.ReadAt(dst[pos:pos+int(runLen)], runStart); err != nil {
			return fmt.Errorf("read frames at %d: %w", runStart, err)
		}
		pos += int(runLen)
		i = j
	}
	return nil
}

// buildInit creates the CMAF header: ftyp + moov with one audio track,
// mvex/mehd/trex, and an edit list that skips the encoder priming.
func buildInit(src *aacTrack) (*mp4.InitSegment, error) {
	init := mp4.NewMP4Init()
	init.AddChild(mp4.NewFtyp("iso6", 0, []string{"iso6", "cmfc", "caac", "dash"}))
	moov := mp4.NewMoovBox()
	init.AddChild(moov)
	mvhd := mp4.CreateMvhd()
	mvhd.Timescale = src.sampleRate // so edit list durations are exact
	moov.AddChild(mvhd)

	trak := mp4.CreateEmptyTrak(1, src.sampleRate, "audio", "und")
	// Edit list: presentation time 0 is media time `priming`. It goes
	// between tkhd and mdia, so rebuild the child order.
	elst := &mp4.ElstBox{Entries: []mp4.ElstEntry{{
		SegmentDuration:  src.presented(),
		MediaTime:        int64(src.priming),
		MediaRateInteger: 1,
	}}}
	if src.presented() > math.MaxUint32 || src.priming > math.MaxInt32 {
		elst.Version = 1
	}
	edts := &mp4.EdtsBox{}
	edts.AddChild(elst)
	edts.Elst = []*mp4.ElstBox{elst}
	children := []mp4.Box{}
	for _, c := range trak.Children {
		children = append(children, c)
		if c.Type() == "tkhd" {
			children = append(children, edts)
		}
	}
	trak.Children = children
	trak.Edts = edts
	moov.AddChild(trak)

	mvex := mp4.NewMvexBox()
	mvex.AddChild(&mp4.MehdBox{FragmentDuration: int64(src.presented())})
	mvex.AddChild(mp4.CreateTrex(1))
	moov.AddChild(mvex)

	avg, peak := esBitrates(src)
	esds := mp4.CreateEsdsBox(src.asc)
	esds.DecConfigDescriptor.AvgBitrate = avg
	esds.DecConfigDescriptor.MaxBitrate = peak
	mp4a := mp4.CreateAudioSampleEntryBox("mp4a", uint16(src.channels), 16, uint16(src.sampleRate), esds)
	trak.Mdia.Minf.Stbl.Stsd.AddChild(mp4a)
	return init, nil
}

// esBitrates returns the average bitrate and the largest bitrate over any
// one-second window, as the esds DecoderConfigDescriptor defines them.
func esBitrates(src *aacTrack) (avg, peak uint32) {
	if src.total == 0 {
		return 0, 0
	}
	var bytesTotal uint64
	for _, f := range src.frames {
		bytesTotal += uint64(f.size)
	}
	avg = uint32(bytesTotal * 8 * uint64(src.sampleRate) / src.total)
	win := int(math.Ceil(float64(src.sampleRate) / aacFrameSamples))
	var sum, best uint64
	for i, f := range src.frames {
		sum += uint64(f.size)
		if i >= win {
			sum -= uint64(src.frames[i-win].size)
		}
		best = max(best, sum)
	}
	peak = uint32(best * 8 * uint64(src.sampleRate) / uint64(win*aacFrameSamples))
	return avg, max(avg, peak)
}
