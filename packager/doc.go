// Package packager turns an uploaded song into what the edge serves: a
// ladder of AAC-LC renditions in single-file CMAF with HLS playlists and a
// DASH MPD, plus Ogg Vorbis files for progressive play, all written to a
// blob.Store under one versioned prefix (names from internal/blobkey):
//
//	master.m3u8                multivariant playlist (written last)
//	aac_{64,128,320}.m3u8      media playlists, byte ranges into the .mp4
//	aac_{64,128,320}.mp4       CMAF: ftyp+moov, sidx, moof+mdat × N
//	manifest.mpd               static on-demand MPD, SegmentBase
//	ogg_{64,128,320}.ogg       Ogg Vorbis
//
// The steps are Probe (ffprobe), transcode (ffmpeg, one process per
// rendition, Config.Concurrency at a time), package (github.com/Eyevinn/mp4ff,
// in process), manifests (github.com/grafov/m3u8, github.com/Eyevinn/dash-mpd)
// and publish. Run (run.go) is the `riff package INPUT OUTDIR` command.
// packager must not import catalogd, edge, origin, a SQL driver or a network
// client: it knows files, ffmpeg and a blob.Store.
//
// # Inputs and ffmpeg
//
// Only MP3, FLAC, WAV, AIFF, Ogg (Vorbis, Opus) and MP4/M4A (AAC, ALAC) are
// accepted; everything else is a *ProbeError whose Kind is one of
// ErrUnsupportedFormat, ErrNoAudio, ErrDuration, ErrUndecodable or
// ErrTooSlow. Every ffprobe and ffmpeg run (Probe, DecodeCheck, RemuxADTS,
// ExtractCover, the encodes) goes through one helper (exec.go) and runs with an empty
// environment, no stdin, -protocol_whitelist file(,pipe), -format_whitelist
// limited to those six demuxers (so no other demuxer ever parses untrusted
// bytes), the input format forced with -f from the probe, the input named
// "file:/abs/path" (a file called "-x;rm *.mp3" or "concat:a|b" is just a
// file), arguments passed without a shell, a deadline after which the
// process is killed, and (on Linux) a process group of its own, killed
// whole on cancel, and a parent-death signal, so no encoder outlives its
// caller. ffmpeg runs with -xerror, so a decode error (a truncated FLAC)
// fails the job instead of publishing a song with a hole; the error carries
// the tail of stderr.
//
// Embedded art (ID3 APIC, FLAC PICTURE, MP4 covr) is a video stream with
// the attached_pic disposition: Probe reports it as Probe.Cover (and a
// file with a real video track is refused), transcodes drop it (-vn), and
// ExtractCover copies its bytes out unchanged (-c copy, no decode) for the
// caller to check and re-encode (package cover: catalogd makes it the
// album's cover when the album has none).
//
// A header's duration is a claim. DecodeCheck counts the decoded samples
// and stops past Config.MaxDuration; a caller that hands its measured
// probe to PackageProbed gets encodes bounded by that real duration (30 s +
// Config.EncodeBudget per audio second, at most Config.Timeout; over it:
// ErrTooSlow).
//
// The whole AAC ladder uses one sample rate: 44.1 kHz for sources of the
// 44.1 kHz family, 48 kHz otherwise. Mono stays mono; everything else is
// downmixed to stereo. Bitrates above what the encoder can carry (AAC-LC:
// 6144 bits per channel per frame; libvorbis: about 240 kbps mono) are
// clamped; the rendition keeps its ladder name and the measured bitrate
// says what it really is.
//
// # Packaging
//
// ffmpeg writes each AAC rendition as a plain progressive MP4 in a temp
// dir, not ADTS: its sample table gives every frame's size and position
// and its edit list gives the encoder priming exactly (1024 samples for
// ffmpeg's encoder), with no guessing. The packager reads that table and
// writes the CMAF file itself.
//
// Fragment alignment. The cut points are computed once, in AAC frames
// (1024 samples), from the frame count, the priming and the target
// (Config.SegmentDuration, default 6 s, rounded to whole frames: 258 frames
// = 5.991 s at 44.1 kHz, 281 = 5.995 s at 48 kHz). Every rendition of a
// ladder shares the sample rate and the source, so it has the same frame
// count; Package checks that and uses the one plan for all of them, so
// fragment k starts at the same tfdt and lasts as long in every rendition.
// The first fragment holds the priming frame(s) plus one target, so every
// fragment but the last presents exactly one target. A tail shorter than
// half a target is merged into the fragment before it. tfdt runs from 0
// without gaps; each fragment is one moof+mdat and one sidx reference
// (SAP type 1: every AAC frame is a sync sample), and the references tile
// the file from the end of the sidx to the end of the file exactly.
//
// Priming. The decoded stream starts with the encoder's priming (one frame
// of delay) and ends with padding up to a whole frame. We keep every frame
// and keep tfdt at 0, and signal the priming the standard ways: an edit
// list in the init segment (media_time = priming, segment_duration = the
// exact source duration, so players that apply edit lists, Apple's for
// one, trim both ends), the same offset as the DASH
// SegmentBase@presentationTimeOffset, and the presentation times in the
// playlists. The last frame's sample duration is the remainder ffmpeg
// wrote, so the media timeline ends at priming + source samples. EXTINF and
// mediaPresentationDuration are presentation durations: their sum is the
// source duration to the sample (EXTINF are rounded to milliseconds from
// cumulative times, so rounding never accumulates). Dropping the priming
// frame instead would break the decoder's overlap-add and click at the
// start. Players that ignore edit lists (ffmpeg for fragmented MP4,
// hls.js) play up to one frame of priming plus at most one frame of
// padding extra: under 47 ms at 44.1 kHz, measured in the tests.
//
// # Playlists
//
// EXT-X-VERSION is 6 in every playlist: RFC 8216 §4.3.2.5 requires 6 for
// EXT-X-MAP in a media playlist without EXT-X-I-FRAMES-ONLY, and nothing we
// write needs 7 (7 adds only the SERVICE values of INSTREAM-ID). ffmpeg
// writes 7; choosing the lowest version that is correct lets the most
// clients play. Version 6 removed PROGRAM-ID, which grafov/m3u8 always
// writes, so it is stripped from the master playlist; and grafov writes
// EXT-X-MAP's BYTERANGE unquoted where the RFC wants a quoted-string, so
// that is quoted. Those two text fixes are the only post-processing.
// BANDWIDTH is the measured peak segment bitrate (segment bytes / EXTINF)
// and AVERAGE-BANDWIDTH the measured average, as RFC 8216 §4.3.4.2 defines
// them; the DASH Representation@bandwidth is the same peak, with
// minBufferTime one (longest) segment. All URIs are relative, so the files
// play under any prefix, including the edge's /t/{token}/ paths. The edge
// filters tiers by dropping variants and Representations; their names
// (aac_128.m3u8, id="aac_128") carry the nominal bitrate.
//
// # Write order and failure
//
// Objects are written with Store.Put, each atomic: the media files first,
// then the media playlists and the MPD, and master.m3u8 very last, so a
// reader who finds the master (the entry point) finds everything it names.
// Package refuses a prefix that already holds objects (ErrPrefixInUse):
// versions are immutable, and it never overwrites something a player may
// be reading. If anything fails after the first Put, everything written is
// deleted again (with its own deadline, even if the caller's context was
// cancelled), and the temp dir is always removed.
//
// A Packager is safe for concurrent use; New has no side effects.
package packager
