package errdefs

import (
	"errors"
	"fmt"
	"testing"
)

func TestClassAcrossText(t *testing.T) {
	for _, class := range classes {
		sent := fmt.Errorf("exec: %q: something: %w", "x", class)
		got := WithClass(errors.New(sent.Error()), ClassOf(sent))
		if !errors.Is(got, class) || got.Error() != sent.Error() {
			t.Errorf("%v: got %v (class %v)", class, got, ClassOf(got))
		}
	}
	plain := errors.New("no class")
	if ClassOf(plain) != "" || WithClass(plain, "") != plain || WithClass(plain, "bogus") != plain {
		t.Errorf("an error without a class gained one")
	}
	if WithClass(nil, ErrNotFound.Error()) != nil {
		t.Errorf("WithClass(nil) is not nil")
	}
}
