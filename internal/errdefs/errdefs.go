package errdefs

import "errors"

// The error classes. Wrap them with context:
//
//	fmt.Errorf("container %s: %w", id, errdefs.ErrNotFound)
var (
	ErrNotFound        = errors.New("not found")
	ErrAlreadyExists   = errors.New("already exists")
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrConflict: the object exists but its state forbids the operation
	// (deleting a running container, starting a stopped one).
	ErrConflict       = errors.New("conflict")
	ErrNotImplemented = errors.New("not implemented")
	ErrUnavailable    = errors.New("unavailable")
	// ErrUnauthorized: credentials are missing or wrong (a registry login).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: the operation is refused whatever the state (removing
	// a predefined network, one with active endpoints; HTTP 403).
	ErrForbidden = errors.New("forbidden")
	// ErrNotModified: nothing to do (starting a running container,
	// stopping a stopped one; HTTP 304).
	ErrNotModified = errors.New("not modified")
)

// IsNotFound reports whether err is of class ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsAlreadyExists reports whether err is of class ErrAlreadyExists.
func IsAlreadyExists(err error) bool { return errors.Is(err, ErrAlreadyExists) }

// IsInvalidArgument reports whether err is of class ErrInvalidArgument.
func IsInvalidArgument(err error) bool { return errors.Is(err, ErrInvalidArgument) }

// IsConflict reports whether err is of class ErrConflict.
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) }

// ErrPermission: the operation is not allowed (a container's program
// that cannot be executed).
var ErrPermission = errors.New("permission denied")

// classes are every class, for errors that cross a process boundary as
// text (ClassOf, WithClass), most specific first.
var classes = []error{ErrPermission, ErrNotFound, ErrAlreadyExists, ErrInvalidArgument, ErrConflict,
	ErrNotImplemented, ErrUnavailable, ErrUnauthorized, ErrForbidden, ErrNotModified}

// ClassOf names the class of err ("" if it has none), for WithClass at
// the other end of a pipe.
func ClassOf(err error) string {
	for _, c := range classes {
		if errors.Is(err, c) {
			return c.Error()
		}
	}
	return ""
}

// WithClass gives err the class named class (as ClassOf names it)
// without changing its text; an unknown or empty name leaves err as it is.
func WithClass(err error, class string) error {
	for _, c := range classes {
		if c.Error() == class && err != nil {
			return classed{err, c}
		}
	}
	return err
}

type classed struct{ err, class error }

func (c classed) Error() string   { return c.err.Error() }
func (c classed) Unwrap() []error { return []error{c.err, c.class} }
