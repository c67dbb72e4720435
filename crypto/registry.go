package crypto

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
)

// Registry holds credentials and authz objects by ID. It is safe for
// concurrent use. Set Logf before calling Watch.
type Registry struct {
	// Logf, when set, receives Watch's reload reports and, once per
	// credentials object added with a priority string, a warning that
	// the priority is ignored. nil is silent.
	Logf func(format string, args ...any)

	mu      sync.RWMutex
	objects map[string]Object
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{objects: map[string]Object{}}
}

func (r *Registry) logf(format string, args ...any) {
	if r.Logf != nil {
		r.Logf(format, args...)
	}
}

// AddObject parses a QEMU -object spec, loads the object and adds it.
func (r *Registry) AddObject(spec string) error {
	obj, err := ParseObject(spec)
	if err != nil {
		return err
	}
	return r.Add(obj)
}

// Add adds obj (a *Creds or an Authz). IDs are unique across kinds, as
// QEMU object ids are.
func (r *Registry) Add(obj Object) error {
	if obj == nil {
		return fmt.Errorf("crypto: registry: nil object")
	}
	switch o := obj.(type) {
	case *Creds:
		if o == nil {
			return fmt.Errorf("crypto: registry: nil object (%T)", obj)
		}
	case Authz:
		// A nil pointer in the interface would panic in ID or, worse,
		// in IsAllowed during a handshake.
		if v := reflect.ValueOf(o); v.Kind() == reflect.Pointer && v.IsNil() {
			return fmt.Errorf("crypto: registry: nil object (%T)", obj)
		}
	default:
		return fmt.Errorf("crypto: registry: %T is neither credentials nor authz", obj)
	}
	id := obj.ID()
	if id == "" {
		return fmt.Errorf("crypto: registry: object without id")
	}
	r.mu.Lock()
	if r.objects == nil {
		r.objects = map[string]Object{}
	}
	if _, dup := r.objects[id]; dup {
		r.mu.Unlock()
		return fmt.Errorf("crypto: registry: duplicate id %q", id)
	}
	r.objects[id] = obj
	r.mu.Unlock()
	// Logged outside the lock: Logf may call back into r.
	if c, ok := obj.(*Creds); ok && c.priority != "" {
		r.logf("crypto: tls-creds %s: priority=%q is ignored: crypto/tls chooses its own cipher suites", id, c.priority)
	}
	return nil
}

// Creds returns the credentials object id.
func (r *Registry) Creds(id string) (*Creds, error) {
	r.mu.RLock()
	obj, ok := r.objects[id]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("crypto: no object with id %q", id)
	}
	c, ok := obj.(*Creds)
	if !ok {
		return nil, fmt.Errorf("crypto: object %q is not a credentials object", id)
	}
	return c, nil
}

// Authz returns the authz object id.
func (r *Registry) Authz(id string) (Authz, error) {
	r.mu.RLock()
	obj, ok := r.objects[id]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("crypto: no object with id %q", id)
	}
	a, ok := obj.(Authz)
	if !ok {
		return nil, fmt.Errorf("crypto: object %q is not an authz object", id)
	}
	return a, nil
}

// Remove deletes object id. Channels already using it are unaffected.
func (r *Registry) Remove(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.objects[id]; !ok {
		return fmt.Errorf("crypto: no object with id %q", id)
	}
	delete(r.objects, id)
	return nil
}

// IDs returns the ids of every object, sorted.
func (r *Registry) IDs() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.objects))
}

// Reload re-reads the files of credentials object id; on failure the old
// material stays and the error is returned (see [Creds.Reload]).
func (r *Registry) Reload(id string) error {
	c, err := r.Creds(id)
	if err != nil {
		return err
	}
	return c.Reload()
}

func (r *Registry) allCreds() []*Creds {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var cs []*Creds
	for _, id := range slices.Sorted(maps.Keys(r.objects)) {
		if c, ok := r.objects[id].(*Creds); ok {
			cs = append(cs, c)
		}
	}
	return cs
}
