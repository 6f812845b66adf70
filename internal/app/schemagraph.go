package app

// The compiled schema as a graph of subschemas, and the creation-time
// check of in-place expansion; growth with the data's depth is in
// schemagrowth.go.

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemaGraph is every compiled subschema that validation can reach, in a
// stable order, with the edges that apply to the same value (in place) and
// those that apply to a member or an item (descending).
type schemaGraph struct {
	all     []*jsonschema.Schema
	index   map[*jsonschema.Schema]int
	inPlace [][]int // static in-place edges
	// dynAlts and recAlts are the subschemas a $dynamicRef or a
	// $recursiveRef may resolve to besides its static target: each
	// application applies one of them.
	dynAlts, recAlts [][]int
	desc             [][]labelled
}

// dynamic are the dynamic alternatives of subschema i.
func (g *schemaGraph) dynamic(i int) []int {
	return append(slices.Clip(g.dynAlts[i]), g.recAlts[i]...)
}

// labelled is a descending edge: the subschema to and the members or items
// it applies to.
type labelled struct {
	to    int
	label edgeLabel
}

type edgeKind int

const (
	edgeProperty   edgeKind = iota // properties[name]
	edgePattern                    // patternProperties[pattern]
	edgeAdditional                 // additionalProperties
	edgeUnevalProp                 // unevaluatedProperties
	edgePrefix                     // prefixItems[index] (items[index] before 2020)
	edgeItems                      // items beyond the prefix (additionalItems before 2020)
	edgeContains                   // contains, unevaluatedItems: every item
	edgeOther                      // propertyNames, contentSchema: not a member or item
)

type edgeLabel struct {
	kind  edgeKind
	name  string // property name or pattern source
	index int
	re    jsonschema.Regexp
}

// newSchemaGraph collects the subschemas reachable from root and from
// extra (dynamic anchors nothing else refers to).
func newSchemaGraph(root *jsonschema.Schema, extra ...*jsonschema.Schema) *schemaGraph {
	g := &schemaGraph{index: map[*jsonschema.Schema]int{}}
	add := func(s *jsonschema.Schema) int {
		if i, ok := g.index[s]; ok {
			return i
		}
		g.index[s] = len(g.all)
		g.all = append(g.all, s)
		return len(g.all) - 1
	}
	add(root)
	for _, s := range extra {
		add(s)
	}
	for i := 0; i < len(g.all); i++ {
		s := g.all[i]
		var in []int
		for _, n := range inPlaceSubschemas(s) {
			in = append(in, add(n))
		}
		var d []labelled
		for _, e := range labelledSubschemas(s) {
			d = append(d, labelled{add(e.s), e.label})
		}
		g.inPlace = append(g.inPlace, in)
		g.desc = append(g.desc, d)
	}
	dyn := map[string][]int{}
	var recursive []int
	for i, s := range g.all {
		if s.DynamicAnchor != "" {
			dyn[s.DynamicAnchor] = append(dyn[s.DynamicAnchor], i)
		}
		if s.RecursiveAnchor {
			recursive = append(recursive, i)
		}
	}
	g.dynAlts, g.recAlts = make([][]int, len(g.all)), make([][]int, len(g.all))
	for i, s := range g.all {
		if s.DynamicRef != nil && s.DynamicRef.Anchor != "" {
			g.dynAlts[i] = dyn[s.DynamicRef.Anchor]
		}
		if s.RecursiveRef != nil {
			g.recAlts[i] = recursive
		}
	}
	return g
}

type labelledSchema struct {
	s     *jsonschema.Schema
	label edgeLabel
}

// labelledSubschemas are the descending subschemas of s with the members
// or items they apply to.
func labelledSubschemas(s *jsonschema.Schema) []labelledSchema {
	var out []labelledSchema
	add := func(x *jsonschema.Schema, l edgeLabel) {
		if x != nil {
			out = append(out, labelledSchema{x, l})
		}
	}
	for _, k := range sortedKeys(s.Properties) {
		add(s.Properties[k], edgeLabel{kind: edgeProperty, name: k})
	}
	pats := make([]jsonschema.Regexp, 0, len(s.PatternProperties))
	for re := range s.PatternProperties {
		pats = append(pats, re)
	}
	sort.Slice(pats, func(i, j int) bool { return pats[i].String() < pats[j].String() })
	for _, re := range pats {
		add(s.PatternProperties[re], edgeLabel{kind: edgePattern, name: re.String(), re: re})
	}
	if x, ok := s.AdditionalProperties.(*jsonschema.Schema); ok {
		add(x, edgeLabel{kind: edgeAdditional})
	}
	add(s.UnevaluatedProperties, edgeLabel{kind: edgeUnevalProp})
	for i, x := range s.PrefixItems {
		add(x, edgeLabel{kind: edgePrefix, index: i})
	}
	add(s.Items2020, edgeLabel{kind: edgeItems})
	switch x := s.Items.(type) {
	case *jsonschema.Schema:
		add(x, edgeLabel{kind: edgeItems})
	case []*jsonschema.Schema:
		for i, y := range x {
			add(y, edgeLabel{kind: edgePrefix, index: i})
		}
	}
	if x, ok := s.AdditionalItems.(*jsonschema.Schema); ok {
		add(x, edgeLabel{kind: edgeItems})
	}
	add(s.Contains, edgeLabel{kind: edgeContains})
	add(s.UnevaluatedItems, edgeLabel{kind: edgeContains})
	add(s.PropertyNames, edgeLabel{kind: edgeOther})
	add(s.ContentSchema, edgeLabel{kind: edgeOther})
	return out
}

// dynamicTarget is the static target of s's $dynamicRef, or nil.
func dynamicTarget(s *jsonschema.Schema) *jsonschema.Schema {
	if s.DynamicRef == nil {
		return nil
	}
	return s.DynamicRef.Ref
}

// schemaPointer names a compiled subschema as a pointer under /schema
// (the request member), or by its location when it lies in a metaschema.
func schemaPointer(s *jsonschema.Schema) string {
	loc, frag, _ := strings.Cut(s.Location, "#")
	if loc != schemaLocation {
		return "/schema"
	}
	if f, err := url.PathUnescape(frag); err == nil {
		frag = f
	}
	return "/schema" + frag
}

// describeSchema names a subschema for a message: its pointer under
// /schema, or its location in a metaschema.
func describeSchema(s *jsonschema.Schema) string {
	if p := schemaPointer(s); p != "/schema" || strings.HasPrefix(s.Location, schemaLocation) {
		return p
	}
	return s.Location
}

// checkExpansion computes, for every subschema, how many applications
// applying it to one value sets off in place (itself, plus every branch
// of its in-place keywords; for a dynamic reference the costliest of the
// subschemas it may resolve to), by dynamic programming over the in-place
// graph, which checkCycles has found acyclic. Errors: a ValidationError
// (unprocessable) naming the first subschema — one whose own branches are
// all within the limit — that sets off more than MaxSchemaExpansion.
func (g *schemaGraph) checkExpansion() error {
	const limit = MaxSchemaExpansion + 1
	cost := make([]int, len(g.all)) // 0: not computed yet
	over := -1
	var visit func(i int) int
	visit = func(i int) int {
		if cost[i] != 0 {
			return cost[i]
		}
		cost[i] = limit // provisional: a cycle here would have been refused already
		s := g.all[i]
		c := 1
		// A dynamic reference applies its static target or one of the
		// alternatives: count the costliest once, instead of the target.
		skip := map[int]int{}
		for _, d := range []struct {
			static *jsonschema.Schema
			alts   []int
		}{{dynamicTarget(s), g.dynAlts[i]}, {s.RecursiveRef, g.recAlts[i]}} {
			if d.static == nil || len(d.alts) == 0 {
				continue
			}
			j := g.index[d.static]
			skip[j]++
			worst := visit(j)
			for _, n := range d.alts {
				worst = max(worst, visit(n))
			}
			c = min(c+worst, limit)
		}
		for _, n := range g.inPlace[i] {
			if skip[n] > 0 {
				skip[n]--
				continue
			}
			c = min(c+visit(n), limit)
		}
		if c == limit && over < 0 {
			over = i
		}
		cost[i] = c
		return c
	}
	for i := range g.all {
		visit(i)
		if over >= 0 {
			s := g.all[over]
			detail := fmt.Sprintf("applying the subschema at %s to one value applies more than %d subschemas to it through $ref, allOf, anyOf, oneOf, not, if/then/else and dependentSchemas", describeSchema(s), MaxSchemaExpansion)
			return schemaLimitError(schemaPointer(s), detail)
		}
	}
	return nil
}
