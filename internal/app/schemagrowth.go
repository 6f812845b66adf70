package app

// The creation-time check that a schema's validation cost does not grow
// exponentially with the nesting of the data (checkGrowth), over the
// schema graph of schemagraph.go.

import (
	"fmt"
	"math/bits"
	"slices"
	"sort"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// checkGrowth refuses a schema whose validation cost grows exponentially
// with the nesting of the data: one where a subschema, applied to a
// value, comes back to itself at a value nested inside it along two
// different paths (through the same member names and item positions), so
// that data repeating that nesting n times costs 2ⁿ applications — e.g.
// {"allOf":[{"$ref":"#/$defs/x"},{"$ref":"#/$defs/x"}],"$defs":{"x":
// {"properties":{"a":{"$ref":"#"}}}}}, or a recursive "children"
// property declared both in a schema and in the base it extends. Member
// names are told apart (a tree with "left" and "right" is fine), as are
// item positions; a name matched by patterns is assumed to match one of
// them only, and recursion through $dynamicRef is followed to its static
// target only: what this misses, the validation budget stops. The check
// is exact for the rest: it looks for two walks from a subschema back to
// itself along the same labels (the products of the per-label matrices
// then grow without bound), in the graph of pairs of subschemas. Errors:
// a ValidationError (unprocessable) naming the subschema.
func (g *schemaGraph) checkGrowth() error {
	work := 0
	// reach[i]: the in-place closure of i, with the number of distinct
	// paths to each subschema in it.
	reach := make([]map[int]int, len(g.all))
	var closure func(i int) map[int]int
	closure = func(i int) map[int]int {
		if reach[i] != nil {
			return reach[i]
		}
		m := map[int]int{i: 1}
		for _, n := range g.inPlace[i] {
			if work > maxGrowthWork {
				break // the result is not used: the check gives up
			}
			for k, v := range closure(n) {
				m[k] = satAdd(m[k], v)
				work++
			}
		}
		reach[i] = m
		return m
	}
	// Level graph: from each subschema that starts a level (the root or
	// the target of a descending edge) to those it applies to a member or
	// an item.
	starts := []int{0}
	isStart := map[int]bool{0: true}
	for i := range g.all {
		for _, e := range g.desc[i] {
			if e.label.kind != edgeOther && !isStart[e.to] {
				isStart[e.to] = true
				starts = append(starts, e.to)
			}
		}
	}
	sort.Ints(starts)
	next := map[int][]int{}
	for _, a := range starts {
		seen := map[int]bool{}
		cl := closure(a)
		if work > maxGrowthWork {
			return nil
		}
		for _, x := range sortedInts(cl) {
			for _, e := range g.desc[x] {
				work++
				if e.label.kind != edgeOther && !seen[e.to] {
					seen[e.to] = true
					next[a] = append(next[a], e.to)
				}
			}
		}
		if work > maxGrowthWork {
			return nil
		}
	}
	for _, comp := range sccs(starts, next) {
		if len(comp) == 1 && !slices.Contains(next[comp[0]], comp[0]) {
			continue
		}
		if a, ok := g.doubles(comp, closure, &work); ok {
			s := g.all[a]
			detail := fmt.Sprintf("the subschema at %s applies itself again to a value nested inside the value along two different paths, so validation cost doubles with every level of nesting of the data; make each recursive property reachable in one way only", describeSchema(s))
			return schemaLimitError(schemaPointer(s), detail)
		} else if work > maxGrowthWork {
			return nil
		}
	}
	return nil
}

// doubles looks, within one recursive component of the level graph, for a
// subschema that reaches itself along two different walks with the same
// labels, and returns it. It gives up (false) when work passes
// maxGrowthWork.
func (g *schemaGraph) doubles(comp []int, closure func(int) map[int]int, work *int) (int, bool) {
	pos := map[int]int{}
	for i, a := range comp {
		pos[a] = i
	}
	// The kinds of member and item the component's recursion descends into.
	var names, patterns []string
	maxPrefix := 0
	for _, a := range comp {
		for x := range closure(a) {
			for _, e := range g.desc[x] {
				switch e.label.kind {
				case edgeProperty:
					if !slices.Contains(names, e.label.name) {
						names = append(names, e.label.name)
					}
				case edgePattern:
					if !slices.Contains(patterns, e.label.name) {
						patterns = append(patterns, e.label.name)
					}
				case edgePrefix:
					maxPrefix = max(maxPrefix, e.label.index+1)
				}
			}
		}
	}
	sort.Strings(names)
	sort.Strings(patterns)
	var classes []growthClass
	for _, n := range names {
		classes = append(classes, growthClass{object: true, name: n})
	}
	for _, p := range patterns {
		classes = append(classes, growthClass{object: true, pattern: p})
	}
	classes = append(classes, growthClass{object: true})
	for i := 0; i < maxPrefix; i++ {
		classes = append(classes, growthClass{index: i})
	}
	classes = append(classes, growthClass{index: -1})

	// step[c][i]: the members j of the component that member i applies to
	// a nested value of class c, with the number of paths.
	type succ struct{ to, paths int }
	step := make([][][]succ, len(classes))
	for ci, c := range classes {
		step[ci] = make([][]succ, len(comp))
		for i, a := range comp {
			w := map[int]int{}
			cl := closure(a)
			for _, x := range sortedInts(cl) {
				for _, e := range g.desc[x] {
					*work++
					if j, ok := pos[e.to]; ok && g.applies(x, e.label, c) {
						w[j] = satAdd(w[j], cl[x])
					}
				}
			}
			for _, j := range sortedInts(w) {
				step[ci][i] = append(step[ci][i], succ{j, w[j]})
			}
		}
		if *work > maxGrowthWork {
			return 0, false
		}
	}
	// The pair graph: node (i, j) means two walks with the same labels are
	// at i and at j. A split is an edge from (i, i) to (k, k) along two
	// different paths.
	k := len(comp)
	id := func(i, j int) int { return i*k + j }
	pairNext := map[int][]int{}
	type edge struct{ from, to int }
	var splits []edge
	var nodes []int
	seen := map[int]bool{}
	var queue []int
	for i := 0; i < k; i++ {
		seen[id(i, i)] = true
		queue = append(queue, id(i, i))
	}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		nodes = append(nodes, u)
		i, j := u/k, u%k
		for ci := range classes {
			for _, si := range step[ci][i] {
				for _, sj := range step[ci][j] {
					*work++
					v := id(si.to, sj.to)
					pairNext[u] = append(pairNext[u], v)
					if i == j && si.to == sj.to && si.paths >= 2 {
						splits = append(splits, edge{u, v})
					}
					if !seen[v] {
						seen[v] = true
						queue = append(queue, v)
					}
				}
			}
			if *work > maxGrowthWork {
				return 0, false
			}
		}
	}
	for u := range pairNext {
		slices.Sort(pairNext[u])
		pairNext[u] = slices.Compact(pairNext[u])
	}
	sort.Ints(nodes)
	compOf := map[int]int{}
	pairComps := sccs(nodes, pairNext)
	for ci, pc := range pairComps {
		for _, u := range pc {
			compOf[u] = ci
		}
	}
	doubling := make([]bool, len(pairComps))
	for ci, pc := range pairComps {
		for _, u := range pc {
			if u/k != u%k && len(pc) > 1 {
				doubling[ci] = true
			}
		}
	}
	for _, e := range splits {
		if compOf[e.from] == compOf[e.to] {
			doubling[compOf[e.from]] = true
		}
	}
	for i := 0; i < k; i++ {
		if doubling[compOf[id(i, i)]] {
			return comp[i], true
		}
	}
	return 0, false
}

// applies reports whether descending edge l of subschema x applies to a
// member or item of class c.
func (g *schemaGraph) applies(x int, l edgeLabel, c growthClass) bool {
	s := g.all[x]
	switch l.kind {
	case edgeProperty:
		return c.object && c.name != "" && l.name == c.name
	case edgePattern:
		if !c.object {
			return false
		}
		if c.name != "" {
			return l.re.MatchString(c.name)
		}
		return l.name == c.pattern
	case edgeAdditional:
		if !c.object {
			return false
		}
		if c.name != "" {
			if _, ok := s.Properties[c.name]; ok {
				return false
			}
		}
		for re := range s.PatternProperties {
			if (c.name != "" && re.MatchString(c.name)) || (c.name == "" && re.String() == c.pattern) {
				return false
			}
		}
		return true
	case edgeUnevalProp:
		return c.object
	case edgePrefix:
		return !c.object && c.index == l.index
	case edgeItems:
		if c.object {
			return false
		}
		if c.index < 0 {
			return true
		}
		n := len(s.PrefixItems)
		if t, ok := s.Items.([]*jsonschema.Schema); ok {
			n = len(t)
		}
		return c.index >= n
	case edgeContains:
		return !c.object
	}
	return false
}

// growthClass is one kind of member or item a level of recursion can
// descend into.
type growthClass struct {
	object  bool
	name    string // a literal member name, or "" for a name matched by pattern / by nothing
	pattern string // the pattern such a name matches, "" for none
	index   int    // an item index; -1 for any index past every prefix
}

func satAdd(a, b int) int {
	s, carry := bits.Add(uint(a), uint(b), 0)
	if carry != 0 || s > 1<<40 {
		return 1 << 40
	}
	return int(s)
}

func sortedInts[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}

// sccs returns the strongly connected components of the graph on nodes
// with edges next (Tarjan's algorithm, iterative).
func sccs(nodes []int, next map[int][]int) [][]int {
	index := map[int]int{}
	low := map[int]int{}
	onStack := map[int]bool{}
	var stack []int
	var out [][]int
	counter := 0
	type frame struct{ v, i int }
	for _, root := range nodes {
		if _, ok := index[root]; ok {
			continue
		}
		call := []frame{{root, 0}}
		index[root], low[root] = counter, counter
		counter++
		stack = append(stack, root)
		onStack[root] = true
		for len(call) > 0 {
			f := &call[len(call)-1]
			if f.i < len(next[f.v]) {
				w := next[f.v][f.i]
				f.i++
				if _, ok := index[w]; !ok {
					index[w], low[w] = counter, counter
					counter++
					stack = append(stack, w)
					onStack[w] = true
					call = append(call, frame{w, 0})
				} else if onStack[w] {
					low[f.v] = min(low[f.v], index[w])
				}
				continue
			}
			v := f.v
			call = call[:len(call)-1]
			if len(call) > 0 {
				p := call[len(call)-1].v
				low[p] = min(low[p], low[v])
			}
			if low[v] == index[v] {
				var comp []int
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					comp = append(comp, w)
					if w == v {
						break
					}
				}
				sort.Ints(comp)
				out = append(out, comp)
			}
		}
	}
	return out
}
