package vmstream

import (
	"testing"

	"github.com/livemig/livemig/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }
