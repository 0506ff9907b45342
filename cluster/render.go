package cluster

import (
	"bytes"
	"fmt"
	"strings"
)

// Render returns the HAProxy configuration conf (configs/haproxy-lb.cfg)
// with the bind address of its frontend riff_api set to listen, that of
// its frontend lb_admin set to admin, and the server lines of its backend
// catalogd replaced by one per address in servers, named catalogd1,
// catalogd2, …, each with the first server line's options. It fails when
// conf lacks one of them, so a renamed section is caught, not ignored.
func Render(conf []byte, listen, admin string, servers []string) ([]byte, error) {
	if len(servers) == 0 {
		return nil, fmt.Errorf("cluster: render: no servers")
	}
	var out bytes.Buffer
	section := ""
	binds := map[string]int{}
	serverDone := false
	for _, line := range strings.SplitAfter(string(conf), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			out.WriteString(line)
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			section = strings.Join(fields, " ")
			out.WriteString(line)
			continue
		}
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		switch {
		case fields[0] == "bind" && (section == "frontend riff_api" || section == "frontend lb_admin"):
			addr := listen
			if section == "frontend lb_admin" {
				addr = admin
			}
			binds[section]++
			fields[1] = addr
			out.WriteString(indent + strings.Join(fields, " ") + "\n")
		case fields[0] == "server" && section == "backend catalogd":
			if serverDone {
				continue
			}
			if len(fields) < 3 {
				return nil, fmt.Errorf("cluster: render: server line %q has no address", strings.TrimSpace(line))
			}
			for i, addr := range servers {
				f := append([]string{"server", fmt.Sprintf("catalogd%d", i+1), addr}, fields[3:]...)
				out.WriteString(indent + strings.Join(f, " ") + "\n")
			}
			serverDone = true
		default:
			out.WriteString(line)
		}
	}
	if binds["frontend riff_api"] != 1 || binds["frontend lb_admin"] != 1 {
		return nil, fmt.Errorf("cluster: render: want one bind line in frontend riff_api and in frontend lb_admin, found %v", binds)
	}
	if !serverDone {
		return nil, fmt.Errorf("cluster: render: no server line in backend catalogd")
	}
	return out.Bytes(), nil
}
