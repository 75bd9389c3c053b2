// ropekit models [NAME]: the built-in models, or one model's embedded config and provenance.
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "builtin_models.h"
#include "commands.h"
#include "model_source.h"
#include "number_format.h"
#include "ropekit/error.h"
#include "text_table.h"

namespace ropekit::cli {
namespace {

struct ModelsOptions {
  std::string name;
  bool json = false;
};

void print_one(const ModelsOptions& o) {
  const BuiltinModel* model = find_builtin_model(o.name);
  if (model == nullptr) {
    (void)load_model_or_config(o.name);  // a file, or an IoError suggesting the closest names
    throw IoError("'" + o.name + "' is a file, not a built-in model name");
  }
  if (o.json) {
    nlohmann::ordered_json j;
    j["name"] = std::string(model->name);
    j["config"] = nlohmann::ordered_json::parse(model->config_json);
    const std::string prov = builtin_model_provenance(model->name);
    j["provenance"] = prov.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json::parse(prov);
    fmt::print("{}\n", j.dump(2));
    return;
  }
  // The config verbatim, so `ropekit models NAME > config.json` exports it unchanged.
  fmt::print("{}", model->config_json);
  if (!model->config_json.empty() && model->config_json.back() != '\n') fmt::print("\n");
}

void print_all(const ModelsOptions& o) {
  std::vector<BuiltinModelSummary> all;
  for (const BuiltinModel& m : builtin_models()) all.push_back(summarize_builtin_model(m));
  if (o.json) {
    nlohmann::ordered_json j = nlohmann::ordered_json::array();
    for (const auto& s : all) {
      j.push_back({{"name", s.name},
                   {"family", s.family},
                   {"rope_type", s.rope_type},
                   {"rope_theta", s.rope_theta},
                   {"max_position_embeddings", s.max_position_embeddings},
                   {"source", s.source}});
    }
    fmt::print("{}\n", j.dump(2));
    return;
  }
  TextTable t;
  t.add_column("name", TextTable::Align::kLeft);
  t.add_column("family", TextTable::Align::kLeft);
  t.add_column("rope_type", TextTable::Align::kLeft);
  t.add_column("theta");
  t.add_column("context");
  t.add_column("source", TextTable::Align::kLeft);
  for (const auto& s : all) {
    t.add_row({s.name, s.family, s.rope_type, format_general(s.rope_theta),
               std::to_string(s.max_position_embeddings), s.source});
  }
  fmt::print("{}", t.render());
}

}  // namespace

void register_models(CLI::App& app) {
  auto o = std::make_shared<ModelsOptions>();
  CLI::App* sub = app.add_subcommand(
      "models", "The built-in models: real configs of released models, each with its source");
  sub->add_option("name", o->name,
                  "Print this model's embedded config.json (with --json: also its provenance)");
  sub->add_flag("--json", o->json,
                "Print JSON: [{name, family, rope_type, rope_theta, max_position_embeddings, "
                "source}]");
  sub->footer(
      "Any command that takes a config path also takes these names.\n\n"
      "Examples:\n"
      "  ropekit models\n"
      "  ropekit models --json\n"
      "  ropekit models gpt-oss-20b > config.json");
  sub->callback([o] { o->name.empty() ? print_all(*o) : print_one(*o); });
}

}  // namespace ropekit::cli

ROPEKIT_CLI_COMMAND(60, register_models)
