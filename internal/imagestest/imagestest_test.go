package imagestest

import "testing"

func TestNew(t *testing.T) {
	s := New(t, Native)
	if s.Images == nil || s.Content == nil || s.Snap == nil {
		t.Fatalf("stores: %+v", s)
	}
	if list, err := s.Images.List(); err != nil || len(list) != 0 {
		t.Errorf("a new store lists %v %v", list, err)
	}
}
