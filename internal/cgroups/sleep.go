package cgroups

import "time"

// sleepBackoff waits a little longer on each try: 1ms, 2ms, ... up to 20ms.
func sleepBackoff(try int) {
	d := time.Duration(try+1) * time.Millisecond
	if d > 20*time.Millisecond {
		d = 20 * time.Millisecond
	}
	time.Sleep(d)
}
