package model

import (
	"strconv"
	"testing"
)

// ordinaryChannel slices out of channelText exactly the names and URLs
// bids have always had.
func TestOrdinaryChannels(t *testing.T) {
	text := channelText()
	for i := range numChannels {
		name, url := ordinaryChannel(text, i)
		if n := strconv.Itoa(i); name != "channel-"+n || url != "https://www.nexmark.com/item.htm?query=1&channel_id="+n {
			t.Fatalf("channel %d: %q, %q", i, name, url)
		}
	}
}
