// Package schemaerr turns a jsonschema/v6 validation error into field errors.
package schemaerr

import (
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Field is one failure: the JSON pointer (RFC 6901) of the value that
// fails, relative to the validated instance ("" is the instance itself),
// and the library's text for it.
type Field struct {
	Pointer string
	Detail  string
}

// Members says where Fields reports a missing required member or an
// unexpected (additional) member.
type Members int

const (
	// AtMember points at the member itself (/parent/name), one field per
	// member the failure names.
	AtMember Members = iota
	// AtObject points at the object that misses or has them, one field
	// for the failure (the library's own instance location).
	AtObject
)

// printer renders details as the library's Error and output units do
// (its default printer is this one); it localizes numbers (1,000).
var printer = message.NewPrinter(language.English)

// Fields lists the failures of ve, one per unit of the library's Basic
// output (ve.BasicOutput), with the unit's text as Detail: every failing
// keyword, including those (allOf, anyOf, $ref) that only group others,
// in the library's order. Like that output, a $ref whose target reports
// a single failure (which may group others) is one "validation failed" at
// that failure's place, with nothing under it: the target's own text is
// not shown. Members places missing and unexpected members;
// the names come from the failure's kind, not from its text. The list is
// sorted by pointer (stable, so failures at one pointer keep the library's
// order) and has no repeated pair of pointer and detail; it is empty when
// ve is nil.
func Fields(ve *jsonschema.ValidationError, m Members) []Field {
	if ve == nil {
		return nil
	}
	var out []Field
	seen := map[Field]bool{}
	add := func(f Field) {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	for _, u := range basicUnits(ve) {
		ptr := pointer(u.location)
		detail := u.kind.LocalizedString(printer)
		var names []string
		if m == AtMember {
			switch k := u.kind.(type) {
			case *kind.AdditionalProperties:
				names = k.Properties
			case *kind.Required:
				names = k.Missing
			}
		}
		if len(names) == 0 {
			add(Field{Pointer: ptr, Detail: detail})
		}
		for _, name := range names {
			add(Field{Pointer: ptr + "/" + escape(name), Detail: detail})
		}
	}
	slices.SortStableFunc(out, func(a, b Field) int { return strings.Compare(a.Pointer, b.Pointer) })
	return out
}

// unit is one unit of the Basic output: where it fails and why.
type unit struct {
	location []string
	kind     jsonschema.ErrorKind
}

// basicUnits lists the units of ve's Basic output that carry an error, in
// its order, from ve's tree of causes: the root alone when it has no
// causes, else every cause depth-first, each before its own causes,
// except that a $ref with a single cause is one unit with the $ref's kind
// at the place of the first unit under it, and nothing under it (the
// library's skip rule, see ValidationError.output).
func basicUnits(ve *jsonschema.ValidationError) []unit {
	if len(ve.Causes) == 0 {
		return keep(nil, unit{ve.InstanceLocation, ve.ErrorKind})
	}
	var out []unit
	var flatten func(e *jsonschema.ValidationError)
	flatten = func(e *jsonschema.ValidationError) {
		for _, c := range e.Causes {
			if skipped(c) {
				out = keep(out, unit{firstLocation(c), c.ErrorKind})
				continue
			}
			out = keep(out, unit{c.InstanceLocation, c.ErrorKind})
			flatten(c)
		}
	}
	flatten(ve)
	return out
}

// keep appends u unless it has no kind (which the validator never
// produces outside its boolean mode).
func keep(out []unit, u unit) []unit {
	if u.kind == nil {
		return out
	}
	return append(out, u)
}

// skipped reports a $ref (or $dynamicRef, $recursiveRef) failure with a
// single cause, which the Basic output folds into one unit.
func skipped(e *jsonschema.ValidationError) bool {
	_, ok := e.ErrorKind.(*kind.Reference)
	return ok && len(e.Causes) == 1
}

// firstLocation is where the first unit under the skipped e fails.
func firstLocation(e *jsonschema.ValidationError) []string {
	c := e.Causes[0]
	for skipped(c) {
		c = c.Causes[0]
	}
	return c.InstanceLocation
}

// pointer is the JSON pointer of an instance location.
func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(escape(t))
	}
	return b.String()
}

// escape escapes a reference token (RFC 6901).
func escape(tok string) string { return tokenEscaper.Replace(tok) }

var tokenEscaper = strings.NewReplacer("~", "~0", "/", "~1")
