package chat

import (
	"sync"
	"time"
)

// room is one chat room. Its mutex is the room's sequencer: every event is
// encoded and put on every member's queue while mu is held, so all members
// see the room's events in the same order. Putting an event on a queue never
// blocks, so holding mu is cheap however slow a member is.
type room struct {
	srv  *Server
	name string

	// size counts admitted connections (joining, joined or leaving); admit
	// checks it against max_clients_per_room and the room is removed from
	// Server.rooms when it drops to zero. Guarded by Server.mu.
	size int

	// mu guards members and orders publishing.
	mu      sync.Mutex
	members map[*client]struct{}
}

func newRoom(srv *Server, name string) *room {
	return &room{srv: srv, name: name, members: make(map[*client]struct{})}
}

// join adds c to the room and announces it to everyone, c included.
func (r *room) join(c *client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.members[c] = struct{}{}
	r.srv.members.Add(1)
	r.publishLocked(Event{Type: EventJoin, Name: c.name})
}

// leave removes c, if it is still a member, and announces it to the rest.
func (r *room) leave(c *client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.members[c]; !ok {
		return // already dropped as a slow consumer
	}
	delete(r.members, c)
	r.srv.members.Add(-1)
	r.publishLocked(Event{Type: EventLeave, Name: c.name})
}

// say relays text from c to every member. A client that was dropped from the
// room (as a slow consumer) no longer speaks in it.
func (r *room) say(c *client, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.members[c]; !ok {
		return
	}
	r.srv.messages.Add(1)
	r.publishLocked(Event{Type: EventMessage, Name: c.name, Text: text})
}

// publishLocked sequences ev (and the leave events it causes) to every
// member. A member whose queue is full is dropped from the room on the spot
// (its writer then closes it with 1008) and its leave is published next.
func (r *room) publishLocked(ev Event) {
	pending := []Event{ev}
	for len(pending) > 0 {
		ev := pending[0]
		pending = pending[1:]
		ev.Room = r.name
		ev.TS = timestamp(time.Now())
		ev.Clients = len(r.members)
		frame := encodeEvent(ev)
		for m := range r.members {
			if m.enqueue(frame) {
				continue
			}
			delete(r.members, m)
			r.srv.members.Add(-1)
			r.srv.log.Warn("client too slow; disconnected", "room", r.name, "name", m.name, "queue", r.srv.sendQueue)
			pending = append(pending, Event{Type: EventLeave, Name: m.name})
		}
	}
}
