package logfile

import (
	"fmt"
	"maps"
	"strconv"

	"github.com/docker/go-units"
	"github.com/tent-project/tent/internal/errdefs"
)

// The log drivers, named as docker's: none keeps no log (output reaches
// attached clients only).
const (
	DriverJSONFile = string(JSONFile)
	DriverLocal    = string(Local)
	DriverNone     = "none"
)

// Drivers are the drivers that keep a log, as /info lists them.
var Drivers = []string{DriverJSONFile, DriverLocal}

// The local driver's defaults, docker's: 100 MB at most, compressed.
const (
	localMaxSize  = 20 << 20
	localMaxFiles = 5
)

// Merge is a container's log configuration with the daemon's defaults in
// it, as dockerd fills it at create: no driver is the daemon's, and the
// daemon's options fill those the container does not set when the
// drivers are the same.
func Merge(driver string, opts map[string]string, defDriver string, defOpts map[string]string) (string, map[string]string) {
	if driver == "" {
		driver = defDriver
	}
	if driver == "" {
		driver = DriverJSONFile
	}
	merged := maps.Clone(opts)
	if merged == nil {
		merged = map[string]string{}
	}
	if driver == defDriver || defDriver == "" && driver == DriverJSONFile {
		for k, v := range defOpts {
			if _, ok := merged[k]; !ok {
				merged[k] = v
			}
		}
	}
	return driver, merged
}

// Configure checks a driver and its options and says how its log is
// kept (everything but the path; none: a zero Options). What the engine
// does not have is refused in dockerd's words.
func Configure(driver string, opts map[string]string) (Options, error) {
	var o Options
	switch driver {
	case DriverNone:
		return o, nil // takes no options, and ignores them as dockerd does
	case DriverJSONFile, "":
		o = Options{Format: JSONFile, MaxSize: -1, MaxFiles: 1}
		driver = DriverJSONFile
	case DriverLocal:
		o = Options{Format: Local, MaxSize: localMaxSize, MaxFiles: localMaxFiles, Compress: true}
	default:
		return o, fmt.Errorf("logger: no log driver named '%s' is registered: %w", driver, errdefs.ErrInvalidArgument)
	}
	for k, v := range opts {
		var err error
		switch k {
		case "max-size":
			o.MaxSize, err = units.RAMInBytes(v)
			if err != nil || o.MaxSize == 0 || o.MaxSize < -1 || driver == DriverLocal && o.MaxSize < 0 {
				return o, fmt.Errorf("invalid max-size %q for the %s log driver: %w", v, driver, errdefs.ErrInvalidArgument)
			}
		case "max-file":
			if o.MaxFiles, err = strconv.Atoi(v); err != nil || o.MaxFiles < 1 {
				return o, fmt.Errorf("invalid max-file %q for the %s log driver: must be a positive number: %w", v, driver, errdefs.ErrInvalidArgument)
			}
		case "compress":
			if o.Compress, err = strconv.ParseBool(v); err != nil {
				return o, fmt.Errorf("invalid compress %q for the %s log driver: must be true or false: %w", v, driver, errdefs.ErrInvalidArgument)
			}
		default:
			return o, fmt.Errorf("unknown log opt '%s' for %s log driver: %w", k, driver, errdefs.ErrInvalidArgument)
		}
	}
	if driver == DriverJSONFile && o.Compress && (o.MaxFiles < 2 || o.MaxSize < 0) {
		return o, fmt.Errorf("compress cannot be true when max-file is less than 2 or max-size is not set: %w", errdefs.ErrInvalidArgument)
	}
	return o, nil
}
