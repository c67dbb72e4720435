package todo

// Pins the project's named dependencies in go.mod while packages are being
// written; removed with this package.
import (
	_ "github.com/hashicorp/go-multierror"
	_ "github.com/pion/dtls/v2"
	_ "github.com/stretchr/testify/require"
	_ "golang.org/x/net/nettest"
	_ "golang.org/x/sys/unix"
)
