// palisade-chart-render renders a Helm chart the way `helm template` does, for the chart's tests
// and for k8s/*.yaml (Helm itself is not installable where palisade is built). It uses Helm's own
// parts: Go's text/template, the Sprig function library and gojsonschema for values.schema.json,
// plus the functions Helm adds (include, tpl, required, toYaml, fromYaml, toJson, fromJson,
// lookup) with Helm's semantics, Helm's values coalescing (later files win, null removes a
// key) and Helm's install order of kinds.
//
//	palisade-chart-render [-f values.yaml]... [--release NAME] [--namespace NS]
//	                      [--include-crds] [--show-only templates/x.yaml]... [--notes] CHART_DIR
//
// Prints the manifests as one YAML stream ("# Source: <chart>/templates/<file>" before each);
// with --notes, the rendered NOTES.txt instead. Errors name the template, line and cause.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"github.com/xeipuuv/gojsonschema"
	"gopkg.in/yaml.v2"
)

type valueFiles []string

func (v *valueFiles) String() string     { return strings.Join(*v, ",") }
func (v *valueFiles) Set(s string) error { *v = append(*v, s); return nil }

// Helm's install order (pkg/releaseutil/kind_sorter.go's documented order): what a manifest
// depends on is applied before it.
var installOrder = []string{
	"PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange",
	"PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList",
	"ConfigMap", "StorageClass", "PersistentVolume", "PersistentVolumeClaim",
	"CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
	"ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service",
	"DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
	"HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress",
	"APIService",
}

func main() {
	var files valueFiles
	flag.Var(&files, "f", "values file (repeatable; later files win)")
	release := flag.String("release", "palisade", "release name")
	namespace := flag.String("namespace", "palisade-system", "release namespace")
	includeCRDs := flag.Bool("include-crds", false, "print the chart's crds/ first")
	notes := flag.Bool("notes", false, "print the rendered NOTES.txt instead of the manifests")
	var only valueFiles
	flag.Var(&only, "show-only", "only the manifests of this template (repeatable), as helm's")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: palisade-chart-render [-f values.yaml]... CHART_DIR")
		os.Exit(2)
	}
	out, err := render(flag.Arg(0), files, only, *release, *namespace, *includeCRDs, *notes)
	if err != nil {
		fmt.Fprintln(os.Stderr, "palisade-chart-render:", err)
		os.Exit(1)
	}
	fmt.Print(out)
}

func render(chartDir string, files, only []string, release, namespace string, includeCRDs,
	notes bool) (string, error) {
	chart, err := readYAMLMap(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return "", err
	}
	values, err := readYAMLMap(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return "", err
	}
	for _, f := range files {
		override, err := readYAMLMap(f)
		if err != nil {
			return "", err
		}
		values = coalesce(override, values)
	}
	if err := validate(filepath.Join(chartDir, "values.schema.json"), values); err != nil {
		return "", err
	}
	name := fmt.Sprint(chart["name"])
	top := map[string]interface{}{
		"Values": values,
		"Chart": map[string]interface{}{
			"Name": name, "Version": chart["version"], "AppVersion": chart["appVersion"],
			"Description": chart["description"],
		},
		"Release": map[string]interface{}{
			"Name": release, "Namespace": namespace, "Service": "Helm", "IsInstall": true,
			"IsUpgrade": false, "Revision": 1,
		},
		"Capabilities": map[string]interface{}{
			"KubeVersion": map[string]interface{}{"Version": "v1.29.0", "Major": "1", "Minor": "29"},
		},
	}
	templates, err := parseTemplates(chartDir, name)
	if err != nil {
		return "", err
	}
	if notes {
		return execute(templates, name+"/templates/NOTES.txt", top)
	}
	var docs []document
	if includeCRDs {
		crds, err := readCRDs(chartDir, name)
		if err != nil {
			return "", err
		}
		docs = append(docs, crds...)
	}
	for _, t := range templates.Templates() {
		base := filepath.Base(t.Name())
		if strings.HasPrefix(base, "_") || base == "NOTES.txt" || !strings.Contains(t.Name(), "/templates/") {
			continue
		}
		if len(only) > 0 && !selected(t.Name(), name, only) {
			continue
		}
		text, err := execute(templates, t.Name(), top)
		if err != nil {
			return "", err
		}
		split, err := splitDocuments(t.Name(), text)
		if err != nil {
			return "", err
		}
		docs = append(docs, split...)
	}
	sortByInstallOrder(docs)
	var out strings.Builder
	for _, d := range docs {
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", d.source, strings.TrimSpace(d.text))
	}
	return out.String(), nil
}

func selected(template, chart string, only []string) bool {
	for _, o := range only {
		if template == chart+"/"+o {
			return true
		}
	}
	return false
}

type document struct {
	source string
	kind   string
	text   string
	crd    bool
}

func readYAMLMap(path string) (map[string]interface{}, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw interface{}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if raw == nil {
		return map[string]interface{}{}, nil
	}
	m, ok := normalize(raw).(map[string]interface{})
	if !ok {
		return nil, fmt.Errorf("%s: not a mapping", path)
	}
	return m, nil
}

// yaml.v2 decodes mappings as map[interface{}]interface{}; templates and JSON want string keys.
func normalize(v interface{}) interface{} {
	switch t := v.(type) {
	case map[interface{}]interface{}:
		m := make(map[string]interface{}, len(t))
		for k, val := range t {
			m[fmt.Sprint(k)] = normalize(val)
		}
		return m
	case []interface{}:
		for i := range t {
			t[i] = normalize(t[i])
		}
		return t
	default:
		return v
	}
}

// Helm's coalescing: the override's keys win, maps merge recursively, and a null in the
// override removes the default's key.
func coalesce(override, defaults map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(defaults))
	for k, v := range defaults {
		out[k] = v
	}
	for k, v := range override {
		if v == nil {
			delete(out, k)
			continue
		}
		if om, ok := v.(map[string]interface{}); ok {
			if dm, ok := out[k].(map[string]interface{}); ok {
				out[k] = coalesce(om, dm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

func validate(schemaPath string, values map[string]interface{}) error {
	schema, err := os.ReadFile(schemaPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	result, err := gojsonschema.Validate(gojsonschema.NewBytesLoader(schema),
		gojsonschema.NewGoLoader(values))
	if err != nil {
		return fmt.Errorf("%s: %v", schemaPath, err)
	}
	if result.Valid() {
		return nil
	}
	var lines []string
	for _, e := range result.Errors() {
		lines = append(lines, "- "+e.String())
	}
	return fmt.Errorf("values don't meet the specifications of the schema:\n%s",
		strings.Join(lines, "\n"))
}

func parseTemplates(chartDir, name string) (*template.Template, error) {
	root := template.New(name).Option("missingkey=zero")
	funcs := sprig.TxtFuncMap()
	// Helm removes these: a chart must render the same wherever it is rendered.
	delete(funcs, "env")
	delete(funcs, "expandenv")
	funcs["toYaml"] = toYAML
	funcs["fromYaml"] = fromYAML
	funcs["toJson"] = toJSON
	funcs["fromJson"] = fromJSON
	funcs["required"] = required
	funcs["lookup"] = func(string, string, string, string) map[string]interface{} {
		return map[string]interface{}{} // as in `helm template`: no cluster to look in
	}
	funcs["include"] = func(string, interface{}) (string, error) { return "", nil }
	funcs["tpl"] = func(string, interface{}) (string, error) { return "", nil }
	root.Funcs(funcs)
	// include and tpl need the parsed set itself.
	root.Funcs(template.FuncMap{
		"include": func(name string, data interface{}) (string, error) {
			var buf bytes.Buffer
			err := root.ExecuteTemplate(&buf, name, data)
			return buf.String(), err
		},
		"tpl": func(text string, data interface{}) (string, error) {
			clone, err := root.Clone()
			if err != nil {
				return "", err
			}
			t, err := clone.New(name + "/tpl").Parse(text)
			if err != nil {
				return "", err
			}
			var buf bytes.Buffer
			err = t.Execute(&buf, data)
			return strings.ReplaceAll(buf.String(), "<no value>", ""), err
		},
	})
	dir := filepath.Join(chartDir, "templates")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if _, err := root.New(name + "/templates/" + e.Name()).Parse(string(data)); err != nil {
			return nil, err
		}
	}
	return root, nil
}

func execute(t *template.Template, name string, data interface{}) (string, error) {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		return "", err
	}
	// Helm's missingkey=zero prints "<no value>" for a missing key; Helm blanks it.
	return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
}

func splitDocuments(source, text string) ([]document, error) {
	var docs []document
	for _, part := range strings.Split("\n"+text, "\n---") {
		if strings.TrimSpace(stripComments(part)) == "" {
			continue
		}
		var head struct {
			Kind string `yaml:"kind"`
		}
		if err := yaml.Unmarshal([]byte(part), &head); err != nil {
			return nil, fmt.Errorf("%s: the rendered manifest is not YAML: %v\n%s", source, err, part)
		}
		if head.Kind == "" {
			return nil, fmt.Errorf("%s: a rendered manifest has no kind:\n%s", source, part)
		}
		docs = append(docs, document{source: source, kind: head.Kind, text: part})
	}
	return docs, nil
}

func stripComments(text string) string {
	var kept []string
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "\n")
}

func readCRDs(chartDir, name string) ([]document, error) {
	paths, err := filepath.Glob(filepath.Join(chartDir, "crds", "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var docs []document
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		split, err := splitDocuments(name+"/crds/"+filepath.Base(p), string(data))
		if err != nil {
			return nil, err
		}
		for i := range split {
			split[i].crd = true
		}
		docs = append(docs, split...)
	}
	return docs, nil
}

func sortByInstallOrder(docs []document) {
	rank := func(d document) int {
		if d.crd {
			return -1 // crds/ is applied before any template
		}
		for i, k := range installOrder {
			if k == d.kind {
				return i
			}
		}
		return len(installOrder)
	}
	sort.SliceStable(docs, func(i, j int) bool {
		ri, rj := rank(docs[i]), rank(docs[j])
		if ri != rj {
			return ri < rj
		}
		if docs[i].kind != docs[j].kind {
			return docs[i].kind < docs[j].kind // unknown kinds: alphabetically, as Helm does
		}
		return docs[i].source < docs[j].source
	})
}

// toYaml as Helm defines it: the value as YAML without the trailing newline, "" on error.
func toYAML(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func fromYAML(text string) map[string]interface{} {
	var raw interface{}
	if err := yaml.Unmarshal([]byte(text), &raw); err != nil {
		return map[string]interface{}{"Error": err.Error()}
	}
	m, _ := normalize(raw).(map[string]interface{})
	return m
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

func fromJSON(text string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

// required as Helm defines it: fails the render with the message when the value is missing
// or an empty string.
func required(message string, v interface{}) (interface{}, error) {
	if v == nil {
		return v, errors.New(message)
	}
	if s, ok := v.(string); ok && s == "" {
		return v, errors.New(message)
	}
	return v, nil
}
