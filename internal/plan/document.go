package plan

import (
	"fmt"
	"strings"
	"time"
)

// Document holds the parts of the human DR plan that no command executes
// but people need in an incident: the overview, the regions, who to call,
// how to communicate, what follows an incident. `linkdr plan render` puts
// them together with everything the program does run (objectives, stores,
// scenarios, checklists, drills) into one document.
type Document struct {
	Title    string `yaml:"title"`
	Overview string `yaml:"overview"`
	// Owner and ApprovedBy appear in the document's footer.
	Owner      string `yaml:"owner"`
	ApprovedBy string `yaml:"approved_by"`
	// ReviewEvery sets the next review date from the plan file's last
	// change. Default 90d.
	ReviewEvery Duration `yaml:"review_every"`

	// Regions describe the primary and the DR infrastructure.
	Regions []Region `yaml:"regions"`
	// Communication is the stakeholder notification plan and templates.
	Communication Communication `yaml:"communication"`
	// Contacts are groups of people and vendors (on-call rotation,
	// external vendors, key personnel).
	Contacts []ContactGroup `yaml:"contacts"`
	// Escalation is the order in which to involve more people.
	Escalation []EscalationLevel `yaml:"escalation"`
	// PostIncident lists the activities after recovery, by deadline.
	PostIncident []Activity `yaml:"post_incident"`
	// Appendices are further references (diagrams, dashboards, procedures).
	Appendices []Appendix `yaml:"appendices"`
}

// Region is one region of the architecture.
type Region struct {
	// Role: primary or dr.
	Role string `yaml:"role"`
	// Name is the provider's region, e.g. us-west-2; Label e.g. Oregon.
	Name       string      `yaml:"name"`
	Label      string      `yaml:"label"`
	Components []Component `yaml:"components"`
}

// Component is one part of a region: "Kubernetes: EKS cluster with 3 AZs".
type Component struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Store names the plan store this component is, if any.
	Store string `yaml:"store"`
}

// Communication is who hears about an incident, how fast, and in what words.
type Communication struct {
	Internal []Notice `yaml:"internal"`
	External []Notice `yaml:"external"`
	// UpdateEvery is the promised status update cadence. Default 30m.
	UpdateEvery Duration   `yaml:"update_every"`
	Templates   []Template `yaml:"templates"`
}

// Notice is one audience and channel, with the deadline to reach it.
type Notice struct {
	Audience string   `yaml:"audience"`
	Channel  string   `yaml:"channel"`
	Within   Duration `yaml:"within"`
}

// Template is a message text with [placeholders] or Go template fields.
type Template struct {
	Name string `yaml:"name"`
	Text string `yaml:"text"`
}

// ContactGroup is a titled list of contacts.
type ContactGroup struct {
	Group    string    `yaml:"group"`
	Contacts []Contact `yaml:"contacts"`
}

// Contact is a person, team or vendor with a role.
type Contact struct {
	Role     string `yaml:"role"`
	Name     string `yaml:"name"`
	Phone    string `yaml:"phone"`
	Email    string `yaml:"email"`
	Via      string `yaml:"via"`
	Response string `yaml:"response"`
}

// EscalationLevel is one step of the escalation path.
type EscalationLevel struct {
	Level int      `yaml:"level"`
	Who   string   `yaml:"who"`
	Via   string   `yaml:"via"`
	After Duration `yaml:"after"`
}

// Activity is a post-incident task group with a deadline.
type Activity struct {
	Within Duration `yaml:"within"`
	Title  string   `yaml:"title"`
	Items  []string `yaml:"items"`
}

// Appendix is a titled reference.
type Appendix struct {
	Title string `yaml:"title"`
	Text  string `yaml:"text"`
	Link  string `yaml:"link"`
}

func applyDocumentDefaults(p *Plan) {
	d := &p.Document
	if d.Title == "" && p.Name != "" {
		d.Title = strings.ToUpper(p.Name[:1]) + p.Name[1:] + " Disaster Recovery Plan"
	}
	if d.ReviewEvery == 0 {
		d.ReviewEvery = Duration(90 * 24 * time.Hour)
	}
	if d.Communication.UpdateEvery == 0 {
		d.Communication.UpdateEvery = Duration(30 * time.Minute)
	}
}

func (p *Plan) validateDocument(ps *problems) {
	d := p.Document
	for i, r := range d.Regions {
		base := fmt.Sprintf("document.regions[%d]", i)
		if r.Role != "primary" && r.Role != "dr" {
			ps.add(base+".role", "primary or dr", "unknown region role %q", r.Role)
		}
		if r.Name == "" {
			ps.add(base+".name", "e.g. name: us-west-2", "required")
		}
		for j, c := range r.Components {
			if c.Store != "" {
				if _, ok := p.Stores[c.Store]; !ok {
					ps.add(fmt.Sprintf("%s.components[%d].store", base, j), "stores: "+strings.Join(p.StoreNames(), ", "), "no store named %q", c.Store)
				}
			}
		}
	}
	for i, t := range d.Communication.Templates {
		if t.Name == "" || strings.TrimSpace(t.Text) == "" {
			ps.add(fmt.Sprintf("document.communication.templates[%d]", i), "each template needs name and text", "incomplete template")
		}
	}
	for i, g := range d.Contacts {
		if g.Group == "" {
			ps.add(fmt.Sprintf("document.contacts[%d].group", i), "e.g. group: On-call rotation", "required")
		}
	}
}
