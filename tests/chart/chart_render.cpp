#include "chart_render.h"

#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include "../integration/agent_harness.h"

namespace palisade::testing::chart {
namespace {

using palisade::testing::exec_argv;

namespace fs = std::filesystem;

// Runs argv without a shell; stdout into `out`, stderr into `err`.
int run(const std::vector<std::string>& argv, std::string& out, std::string& err) {
  const fs::path err_file = fs::temp_directory_path() / ("chart-err-" + std::to_string(getpid()));
  int pipefd[2];
  if (pipe(pipefd) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 1);
    close(pipefd[0]);
    close(pipefd[1]);
    FILE* errors = std::fopen(err_file.c_str(), "w");
    if (errors != nullptr) dup2(fileno(errors), 2);
    exec_argv(argv);
  }
  close(pipefd[1]);
  char buffer[8192];
  for (ssize_t n; (n = read(pipefd[0], buffer, sizeof(buffer))) > 0;) out.append(buffer, n);
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  std::ifstream in(err_file);
  err.assign(std::istreambuf_iterator<char>(in), {});
  fs::remove(err_file);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

json scalar(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  if (node.Tag() == "!") return text;  // quoted: a string whatever it looks like
  static const std::regex kInt("[-+]?[0-9]+");
  static const std::regex kFloat("[-+]?([0-9]*\\.[0-9]+|[0-9]+\\.[0-9]*)([eE][-+]?[0-9]+)?");
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL")
    return nullptr;
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  if (std::regex_match(text, kInt)) return std::stoll(text);
  if (std::regex_match(text, kFloat)) return std::stod(text);
  return text;
}

json convert(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : node) out[kv.first.as<std::string>()] = convert(kv.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : node) out.push_back(convert(item));
      return out;
    }
    case YAML::NodeType::Scalar:
      return scalar(node);
    default:
      return nullptr;
  }
}

}  // namespace

fs::path source_dir() {
  return PALISADE_SOURCE_DIR;
}

json yaml_to_json(const std::string& yaml_text) {
  return convert(YAML::Load(yaml_text));
}

std::vector<json> yaml_documents(const std::string& yaml_text) {
  std::vector<json> out;
  for (const auto& doc : YAML::LoadAll(yaml_text)) {
    if (doc.IsMap()) out.push_back(convert(doc));
  }
  return out;
}

Rendered render(const std::string& values_yaml, const std::vector<std::string>& flags) {
  std::vector<std::string> argv = {CHART_RENDERER_PATH};
  const fs::path values = fs::temp_directory_path() / ("chart-values-" + std::to_string(getpid()) +
                                                       "-" + std::to_string(std::rand()) + ".yaml");
  if (!values_yaml.empty()) {
    std::ofstream(values) << values_yaml;
    argv.insert(argv.end(), {"-f", values.string()});
  }
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back((source_dir() / "charts" / "palisade").string());
  Rendered r;
  r.exit_code = run(argv, r.text, r.errors);
  fs::remove(values);
  if (r.exit_code == 0 && std::find(flags.begin(), flags.end(), "--notes") == flags.end()) {
    r.manifests = yaml_documents(r.text);
  }
  return r;
}

json manifest(const std::vector<json>& manifests, const std::string& kind,
              const std::string& name) {
  for (const auto& m : manifests) {
    if (m.value("kind", "") == kind && (name.empty() || m["metadata"].value("name", "") == name))
      return m;
  }
  return nullptr;
}

json agent_container(const std::vector<json>& manifests) {
  const json ds = manifest(manifests, "DaemonSet");
  if (ds.is_null()) return nullptr;
  for (const auto& c : ds["spec"]["template"]["spec"]["containers"]) {
    if (c.value("name", "") == "agent") return c;
  }
  return nullptr;
}

}  // namespace palisade::testing::chart
