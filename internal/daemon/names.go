package daemon

import (
	"fmt"
	"math/rand/v2"
)

// Names for containers the user did not name, in docker's
// "adjective_noun" style. The nouns are kinds of shelter.
var (
	adjectives = []string{"agile", "bold", "brave", "calm", "clever", "cosy", "eager", "fair",
		"gentle", "happy", "jolly", "keen", "kind", "lively", "lucky", "merry", "nimble", "proud",
		"quick", "quiet", "sharp", "shy", "snug", "steady", "swift", "tidy", "vivid", "warm", "wise", "zesty"}
	nouns = []string{"bivouac", "cabin", "canopy", "chalet", "cottage", "dome", "gazebo", "hammock",
		"hut", "igloo", "kiosk", "lean_to", "lodge", "marquee", "pavilion", "pergola", "shack",
		"shanty", "shelter", "tarp", "teepee", "tipi", "trailer", "treehouse", "wigwam", "yurt"}
)

// randomName returns a generated name; after a few collisions it adds a
// number, as docker does.
func randomName(attempt int) string {
	name := adjectives[rand.IntN(len(adjectives))] + "_" + nouns[rand.IntN(len(nouns))]
	if attempt > 3 {
		name += fmt.Sprint(rand.IntN(10))
	}
	return name
}
