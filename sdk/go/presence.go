package tandem

import (
	"sort"
	"sync"

	"github.com/tandemhq/tandem/sdk/go/client"
)

// PresenceState folds the presence events of a channel (a subscription to
// PresenceTopic) into the current member list: a state event replaces it,
// join adds a member, leave removes one. After a reconnect the server sends
// a fresh state, so the list heals by itself. The zero value is ready to
// use and safe for concurrent use.
type PresenceState struct {
	mu      sync.Mutex
	members map[string]client.PresenceMember
}

// Apply folds one event; it ignores events that are not presence events
// and reports whether the member list changed.
func (p *PresenceState) Apply(ev Event) bool {
	if ev.Type != TypePresence {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev.Action {
	case "state":
		p.members = make(map[string]client.PresenceMember, len(ev.Members))
		for _, m := range ev.Members {
			p.members[m.Id] = m
		}
		return true
	case "join":
		if p.members == nil {
			p.members = map[string]client.PresenceMember{}
		}
		for _, m := range ev.Members {
			p.members[m.Id] = m
		}
		return len(ev.Members) > 0
	case "leave":
		changed := false
		for _, m := range ev.Members {
			if _, ok := p.members[m.Id]; ok {
				delete(p.members, m.Id)
				changed = true
			}
		}
		return changed
	}
	return false
}

// Members returns the present members ordered by id.
func (p *PresenceState) Members() []client.PresenceMember {
	p.mu.Lock()
	out := make([]client.PresenceMember, 0, len(p.members))
	for _, m := range p.members {
		out = append(out, m)
	}
	p.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Id < out[j].Id })
	return out
}
