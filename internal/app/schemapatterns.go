package app

// A schema's regular expressions: sized against MaxSchemaPatternSize and
// compiled once for every copy of the schema.

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// patternSet sizes and compiles a collection schema's regular
// expressions, and keeps them so that every compiled copy of the schema
// shares them (a *regexp.Regexp is safe for concurrent use).
type patternSet struct {
	mu    sync.Mutex
	total int
	sizes map[string]int
	re    map[string]*sizedRegexp
}

// sizedRegexp is a compiled pattern with its size.
type sizedRegexp struct {
	*regexp.Regexp
	size int
}

// errPatternLimit marks the refusal of a pattern over MaxSchemaPatternSize.
var errPatternLimit = errors.New("the schema's regular expressions are too large")

// measure sizes a pattern (once) and adds it to the total. Errors: its
// syntax error, or one wrapping errPatternLimit when the total passes
// MaxSchemaPatternSize.
func (ps *patternSet) measure(pattern string) (int, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.measureLocked(pattern)
}

func (ps *patternSet) measureLocked(pattern string) (int, error) {
	if n, ok := ps.sizes[pattern]; ok {
		return n, nil
	}
	// Parsing takes time too: the text counts before it is parsed.
	if ps.total+len(pattern) > MaxSchemaPatternSize {
		return 0, fmt.Errorf("%w: with this one (%d bytes) they pass the limit of %d", errPatternLimit, len(pattern), MaxSchemaPatternSize)
	}
	tree, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return 0, err
	}
	n := max(regexpSize(tree), len(pattern))
	if ps.total+n > MaxSchemaPatternSize {
		return 0, fmt.Errorf("%w: with this one (size %d; counted repetitions like {1000} multiply a pattern's size) they pass the limit of %d", errPatternLimit, n, MaxSchemaPatternSize)
	}
	if ps.sizes == nil {
		ps.sizes, ps.re = map[string]int{}, map[string]*sizedRegexp{}
	}
	ps.total += n
	ps.sizes[pattern] = n
	return n, nil
}

// compile is the compiler's RegexpEngine. Errors: those of measure, or
// the pattern's compile error.
func (ps *patternSet) compile(pattern string) (jsonschema.Regexp, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if re, ok := ps.re[pattern]; ok {
		return re, nil
	}
	n, err := ps.measureLocked(pattern)
	if err != nil {
		return nil, err
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	ps.re[pattern] = &sizedRegexp{re, n}
	return ps.re[pattern], nil
}

// regexpSize estimates how many instructions a parsed pattern compiles
// to, expanding counted repetitions, without compiling it (saturating at
// 1<<30).
func regexpSize(re *syntax.Regexp) int {
	sum := func(subs []*syntax.Regexp) int {
		n := 0
		for _, s := range subs {
			n = min(n+regexpSize(s), 1<<30)
		}
		return n
	}
	switch re.Op {
	case syntax.OpLiteral:
		return max(len(re.Rune), 1)
	case syntax.OpCapture:
		return min(sum(re.Sub)+2, 1<<30)
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
		return min(sum(re.Sub)+1, 1<<30)
	case syntax.OpRepeat:
		n := re.Max
		if n < 0 {
			n = re.Min + 1
		}
		n = max(n, 1)
		return min(sum(re.Sub)*n+n, 1<<30)
	case syntax.OpConcat:
		return max(sum(re.Sub), 1)
	case syntax.OpAlternate:
		return min(sum(re.Sub)+len(re.Sub), 1<<30)
	}
	return 1
}
