package ingest

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"riff/packager"
)

// progressWriter turns packager progress into the job's stage and
// percent, written at most every half second (and on stage changes).
type progressWriter struct {
	w     *Worker
	ctx   context.Context
	job   int64
	owner string

	stage string
	last  time.Time
	done  map[string]float64 // rendition → fraction encoded

	// span is the context of the "package" span, the parent of one
	// "encode" span per rendition while it encodes (tracing on).
	span    context.Context
	encodes map[string]trace.Span // nil once ended
}

// encodeSpan starts the span of rendition's encode on its first progress.
func (p *progressWriter) encodeSpan(rendition string) {
	if p.span == nil || !p.w.tracer.Tracing() || rendition == "" {
		return
	}
	if p.encodes == nil {
		p.encodes = map[string]trace.Span{}
	}
	if _, ok := p.encodes[rendition]; !ok {
		_, p.encodes[rendition] = p.w.tracer.StartSpan(p.span, "encode "+rendition, attribute.String("rendition", rendition))
	}
}

// endEncodes ends the encode spans still open (packaging moved on, or
// failed).
func (p *progressWriter) endEncodes() {
	for r, s := range p.encodes {
		if s != nil {
			s.End()
		}
		p.encodes[r] = nil
	}
}

func (p *progressWriter) set(stage string, percent int, force bool) {
	if !force && stage == p.stage && time.Since(p.last) < 500*time.Millisecond {
		return
	}
	p.stage, p.last = stage, time.Now()
	if err := p.w.store.SetJobProgress(p.ctx, p.job, p.owner, stage, percent); err != nil && p.ctx.Err() == nil {
		p.w.log.Debug("job progress", "job", p.job, "err", err)
	}
}

// packager is the packager's progress callback: probe 2%, transcode up to
// 90% (the mean of the renditions' progress), package 92%, publish 95%.
func (p *progressWriter) packager(pg packager.Progress) {
	switch pg.Stage {
	case packager.StageProbe:
		p.set(pg.Stage, 2, true)
	case packager.StageTranscode:
		p.encodeSpan(pg.Rendition)
		if s := p.encodes[pg.Rendition]; s != nil && pg.Total > 0 && pg.Done >= pg.Total {
			s.End()
			p.encodes[pg.Rendition] = nil // done: not started again
		}
		if p.done == nil {
			p.done = map[string]float64{}
		}
		if pg.Total > 0 && pg.Rendition != "" {
			p.done[pg.Rendition] = min(1, float64(pg.Done)/float64(pg.Total))
		}
		cfg := p.w.pk.Config()
		n := len(cfg.Ladder) * len(cfg.Formats)
		sum := 0.0
		for _, f := range p.done {
			sum += f
		}
		pct := 5
		if n > 0 {
			pct += int(85 * sum / float64(n))
		}
		p.set(pg.Stage, pct, pg.Stage != p.stage)
	case packager.StagePackage:
		p.endEncodes()
		p.set(pg.Stage, 92, true)
	case packager.StagePublish:
		p.set(pg.Stage, 95, true)
	}
}
