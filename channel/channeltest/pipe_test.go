package channeltest_test

import (
	"testing"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/channel/channeltest"
	"github.com/livemig/livemig/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func pipe(t testing.TB) (a, b channel.Channel) {
	x, y := channeltest.Pipe()
	return x, y
}

func TestPipe(t *testing.T) { channeltest.TestChannel(t, pipe) }

func TestPipeSynctest(t *testing.T) { channeltest.TestChannelSynctest(t, pipe) }
