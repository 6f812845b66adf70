package app

import (
	"context"
	"fmt"
	"regexp"
	"regexp/syntax"
	"runtime"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The default budget of one validation of a write's data against its
// collection's schema (see ValidationBudget).
const (
	// DefaultValidationSteps is how many steps one validation may take: a
	// step is one subschema applied to one value (a regular expression
	// match costs one step per 32 units of input bytes × pattern size).
	DefaultValidationSteps = 1_000_000
	// DefaultValidationTimeout is how long one validation may run.
	DefaultValidationTimeout = time.Second
)

// ValidationBudget bounds the validation of one write's data. A
// validation that would pass either bound is stopped where it is and the
// write refused with a 422 problem naming /data; one whose request is
// cancelled stops as promptly, with the context's error.
type ValidationBudget struct {
	// Steps is how many steps one validation may take; 0 or less means
	// DefaultValidationSteps.
	Steps int64
	// Timeout is how long one validation may run; 0 or less means
	// DefaultValidationTimeout.
	Timeout time.Duration
}

func (b ValidationBudget) withDefaults() ValidationBudget {
	if b.Steps <= 0 {
		b.Steps = DefaultValidationSteps
	}
	if b.Timeout <= 0 {
		b.Timeout = DefaultValidationTimeout
	}
	return b
}

// The ways a metered validation stops early.
type stopReason int

const (
	stopSteps stopReason = iota + 1
	stopTime
	stopCancelled
	// stopDetails: the data is known not to match, but finding where
	// would exceed the budget.
	stopDetails
)

func (r stopReason) describe(b ValidationBudget) string {
	switch r {
	case stopSteps:
		return fmt.Sprintf("%d steps (one step is one subschema applied to one value)", b.Steps)
	case stopTime:
		return fmt.Sprintf("%s", b.Timeout)
	}
	return "its request"
}

// validationStop is the panic value with which a meter stops the
// validator from inside (the library has no other way out); only
// meteredSchema.validate recovers it.
type validationStop struct{ reason stopReason }

// meter counts the steps of the one validation running on its compiled
// schema copy. Its hooks run on the validating goroutine only.
type meter struct {
	armed    bool
	left     int64
	deadline time.Time
	done     <-chan struct{}
}

func (m *meter) arm(ctx context.Context, b ValidationBudget) {
	*m = meter{armed: true, left: b.Steps, deadline: time.Now().Add(b.Timeout), done: ctx.Done()}
}

func (m *meter) disarm() { *m = meter{} }

// step is called once per subschema application, before it applies any
// keyword that descends or branches.
func (m *meter) step() { m.charge(1) }

// charge takes n steps from the budget, then checks the context and the
// clock; it stops the validation (see validationStop) when one is spent.
func (m *meter) charge(n int64) {
	if !m.armed {
		return
	}
	m.left -= n
	if m.left < 0 {
		panic(validationStop{stopSteps})
	}
	select {
	case <-m.done:
		panic(validationStop{stopCancelled})
	default:
	}
	if time.Now().After(m.deadline) {
		panic(validationStop{stopTime})
	}
}

// unitsPerStep converts the worst-case work of a regular expression
// match, input bytes × pattern size (Go's matcher is linear in both), into
// steps: a step costs about as much as 32 such units.
const unitsPerStep = 32

// meteredRegexp is a pattern that charges its meter for a match's worst
// case before matching, so that a long string cannot hold the validator
// inside one match for long.
type meteredRegexp struct {
	re   jsonschema.Regexp
	size int64
	m    *meter
}

func newMeteredRegexp(re jsonschema.Regexp, m *meter) *meteredRegexp {
	size := int64(1)
	if s, ok := re.(*sizedRegexp); ok {
		size = int64(s.size)
	}
	return &meteredRegexp{re, size, m}
}

func (r *meteredRegexp) MatchString(s string) bool {
	r.m.charge((int64(len(s)) + 1) * r.size / unitsPerStep)
	return r.re.MatchString(s)
}

func (r *meteredRegexp) String() string { return r.re.String() }

// validateRegexFormat is format "regex" (asserted by drafts before
// 2019-09) for data: the string must compile; compiling it is charged by
// its size first.
func validateRegexFormat(m *meter, v any) error {
	s, ok := v.(string)
	if !ok {
		return nil
	}
	m.charge(int64(len(s)) / unitsPerStep)
	tree, err := syntax.Parse(s, syntax.Perl)
	if err != nil {
		return err
	}
	m.charge(int64(regexpSize(tree)) / 4)
	_, err = regexp.Compile(s)
	return err
}

// meteredSchema is one compiled copy of a collection schema whose every
// subschema reports to m. A copy validates one value at a time.
type meteredSchema struct {
	root *jsonschema.Schema
	// check is {"not": {"$ref": root}}: the validator applies root inside
	// it in its boolean mode, which stops at the first failure of allOf
	// and of an object's keywords and records failures without their
	// locations. It fails exactly when root passes.
	check *jsonschema.Schema
	m     *meter
}

// instrument hooks every subschema of g to a new meter. The validator
// calls a subschema's format check on every application that got past
// type, const and enum — before $ref, the applicators and the member and
// item keywords — so a hook there sees every application that can lead
// to more, including the failing ones inside not/anyOf/if for which the
// validator runs no vocabulary extension. Formats the schema asserts
// (older drafts) still run after the hook; patterns charge for their
// matches.
func instrument(g *schemaGraph, check *jsonschema.Schema) *meteredSchema {
	m := &meter{}
	for _, s := range g.all {
		if s.Bool != nil {
			continue
		}
		switch orig := s.Format; {
		case orig != nil && orig.Name == "regex":
			// The library would compile the data with the schema's engine,
			// which keeps what it compiles.
			s.Format = &jsonschema.Format{Name: orig.Name, Validate: func(v any) error { m.step(); return validateRegexFormat(m, v) }}
		case orig != nil:
			s.Format = &jsonschema.Format{Name: orig.Name, Validate: func(v any) error { m.step(); return orig.Validate(v) }}
		default:
			s.Format = &jsonschema.Format{Validate: func(any) error { m.step(); return nil }}
		}
		if s.Pattern != nil {
			s.Pattern = newMeteredRegexp(s.Pattern, m)
		}
		if len(s.PatternProperties) > 0 {
			pp := make(map[jsonschema.Regexp]*jsonschema.Schema, len(s.PatternProperties))
			for re, x := range s.PatternProperties {
				pp[newMeteredRegexp(re, m)] = x
			}
			s.PatternProperties = pp
		}
	}
	return &meteredSchema{root: g.all[0], check: check, m: m}
}

// The detail pass records every failure with its value's location; its
// steps are capped so that they hold at most detailBytes, counting
// detailStepBytes plus 16 bytes per level of the data's nesting a step.
const (
	detailBytes     = 64 << 20
	detailStepBytes = 256
)

// validate validates v (nesting depth deep) within budget b. A boolean
// pass gives the verdict; only when v does not match does a second pass
// find where, with what is left of the budget, capped by detailBytes. It
// returns the second pass's result (nil when v matches), or why it
// stopped. A panic that is not the meter's goes on up.
func (ms *meteredSchema) validate(ctx context.Context, b ValidationBudget, v any, depth int) (result error, stopped stopReason) {
	ms.m.arm(ctx, b)
	defer ms.m.disarm()
	detail := false
	defer func() {
		if r := recover(); r != nil {
			s, ok := r.(validationStop)
			if !ok {
				panic(r)
			}
			stopped = s.reason
			if detail && s.reason != stopCancelled {
				stopped = stopDetails
			}
		}
	}()
	if ctx.Err() != nil {
		return nil, stopCancelled
	}
	if ms.check.Validate(v) != nil {
		return nil, 0 // the check failed: v matches
	}
	detail = true
	ms.m.left = min(ms.m.left, detailBytes/(detailStepBytes+16*int64(depth)))
	if err := ms.root.Validate(v); err != nil {
		return err, 0
	}
	return nil, stopDetails // the passes disagree, which they cannot
}

// depthOf is how deep v nests (a scalar is 0).
func depthOf(v any) int {
	d := 0
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			d = max(d, depthOf(e))
		}
		return d + 1
	case []any:
		for _, e := range x {
			d = max(d, depthOf(e))
		}
		return d + 1
	}
	return 0
}

// collectionSchema is a collection's checked schema, ready for concurrent
// validation: each validation borrows a compiled copy, since a copy's
// meter serves one validation at a time.
type collectionSchema struct {
	doc      []byte
	anchors  []string
	patterns *patternSet
	budget   ValidationBudget
	idle     chan *meteredSchema
	// copies admits at most cap(copies) compiled copies at once, so that
	// concurrent writes to one collection neither compile a copy each
	// (a large schema takes tens of milliseconds) nor hold more than that
	// many validations' memory: the others wait for a copy.
	copies chan struct{}
}

// newCollectionSchema checks a schema document against every limit (see
// MaxSchemaBytes and the others), compiles it and refuses reference
// cycles, in-place expansion beyond MaxSchemaExpansion and growth
// exponential in the data's depth. Validations with it get budget b
// (zero fields: the defaults). Errors: a ValidationError (unprocessable)
// naming the offending place under /schema.
func newCollectionSchema(doc []byte, b ValidationBudget) (*collectionSchema, error) {
	patterns := &patternSet{}
	v, counts, err := parseSchema(doc, patterns)
	if err != nil {
		return nil, err
	}
	g, check, err := compileParsed(v, counts.anchors, patterns)
	if err != nil {
		return nil, err
	}
	if err := g.checkCycles(); err != nil {
		return nil, err
	}
	if err := g.checkExpansion(); err != nil {
		return nil, err
	}
	if err := g.checkGrowth(); err != nil {
		return nil, err
	}
	n := runtime.GOMAXPROCS(0)
	cs := &collectionSchema{doc: doc, anchors: counts.anchors, patterns: patterns, budget: b.withDefaults(),
		idle: make(chan *meteredSchema, n), copies: make(chan struct{}, n)}
	cs.copies <- struct{}{}
	cs.idle <- instrument(g, check)
	return cs, nil
}

// get borrows a compiled copy: an idle one, a new one while fewer than
// GOMAXPROCS exist, or else the next one returned. Errors: ctx's error,
// wrapped, when it ends first; those of compiling the document, which its
// checks rule out.
func (cs *collectionSchema) get(ctx context.Context) (*meteredSchema, error) {
	select {
	case ms := <-cs.idle:
		return ms, nil
	default:
	}
	select {
	case ms := <-cs.idle:
		return ms, nil
	case cs.copies <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the collection schema: %w", context.Cause(ctx))
	}
	v, _, err := parseSchema(cs.doc, cs.patterns)
	if err == nil {
		var g *schemaGraph
		var check *jsonschema.Schema
		if g, check, err = compileParsed(v, cs.anchors, cs.patterns); err == nil {
			return instrument(g, check), nil
		}
	}
	<-cs.copies
	return nil, err
}

// put returns a borrowed copy.
func (cs *collectionSchema) put(ms *meteredSchema) { cs.idle <- ms }
