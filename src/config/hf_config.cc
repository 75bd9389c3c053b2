// Reads a Hugging Face config.json into one RopeConfig per layer type.
//
// The order of resolution follows transformers (commit decba1d2; docs/variants.md, "Model
// families covered"):
//   1. rope dicts: `rope_parameters` (flat, or one dict per layer type) else legacy
//      `rope_scaling`; the type is `rope_type`, then `type`, then "default".
//   2. rope_theta: the dict's, else the top-level `rope_theta`, else family conventions
//      (GPT-NeoX `rotary_emb_base`, Gemma 3 defaults), else 10000.
//   3. head_dim: `head_dim`, else hidden_size / num_attention_heads; DeepSeek-V2/V3 rotate only
//      `qk_rope_head_dim` features, which is the head as far as RoPE is concerned.
//   4. rotary_dim = int(head_dim · partial_rotary_factor) (Phi default 0.5, GPT-NeoX rotary_pct).
//   5. family conventions that change the math (layout, mrope assignment, Gemma 3 local theta).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "config/json_access.h"
#include "config/scaling_types.h"
#include "ropekit/hf_config.h"

namespace ropekit {

using detail::fail;
using detail::get_bool;
using detail::get_integer;
using detail::get_number;
using detail::get_string;
using detail::join_path;
using detail::Json;

const RopeConfig& ModelRope::layer(std::string_view name) const {
  for (const auto& l : layers)
    if (l.layer_type == name) return l;
  std::string names;
  for (const auto& l : layers) names += (names.empty() ? "" : ", ") + detail::excerpt(l.layer_type);
  throw ArgumentError("layer \"" + detail::excerpt(name) +
                      "\" not in this config; available: " + names);
}

namespace {

bool starts_with(const std::string& s, std::string_view p) { return s.rfind(p, 0) == 0; }

// Families (model_type prefixes) whose conventions change the math.
struct Family {
  bool deepseek = false;         // qk_rope_head_dim, rope_interleave (default true)
  bool llama4 = false;           // interleaved pairs (complex form), rounds once in bf16
  bool gemma3 = false;           // sliding layers: rope_local_base_freq, no scaling
  bool phi = false;              // partial_rotary_factor default 0.5
  bool phi3 = false;             // top-level original_max_position_embeddings wins
  bool gpt_neox = false;         // rotary_pct, rotary_emb_base
  bool glm_interleaved = false;  // GLM / GLM-4 / GLM-4.1V: interleaved pairs, prf default 0.5
  bool glm_half_prf = false;     // GLM-4.5 (glm4_moe): prf default 0.5, half-split pairs
  bool qwen3_mrope = false;      // interleaved T/H/W assignment
  bool ernie_vl = false;         // H/W alternating + T tail, interleaved pairs, rounds once
  bool gpt_oss = false;          // default YaRN block with truncate=false
  bool nope_interval = false;    // Llama 4 / SmolLM3: every no_rope_layer_interval-th layer is NoPE
  bool glm_dsa = false;          // GLM-5 (MLA + DeepSeek-V3.2 sparse-attention indexer)
  bool deepseek_v4 = false;      // per-layer RoPE: main (sliding) and compress layers
  bool ministral3 = false;       // llama_4_scaling_beta: a query scale on every layer
};

Family family_of(const std::string& mt) {
  Family f;
  f.deepseek = starts_with(mt, "deepseek_v2") || starts_with(mt, "deepseek_v3") ||
               mt == "kimi_k2" || mt == "glm4_moe_lite" || mt == "glm_moe_dsa";
  f.glm_dsa = mt == "glm_moe_dsa";
  f.deepseek_v4 = mt == "deepseek_v4";
  f.ministral3 = mt == "ministral3";
  f.llama4 = starts_with(mt, "llama4");
  f.nope_interval = f.llama4 || mt == "smollm3";
  f.gemma3 = mt == "gemma3" || mt == "gemma3_text";
  f.phi = mt == "phi" || mt == "phi-msft";
  f.phi3 = mt == "phi3" || mt == "phimoe";
  f.gpt_neox = mt == "gpt_neox" || mt == "gpt_neox_japanese";
  f.glm_interleaved =
      mt == "glm" || mt == "glm4" || mt == "glm4v" || mt == "glm4v_text" || mt == "chatglm";
  f.glm_half_prf = mt == "glm4_moe" || mt == "glm4v_moe" || mt == "glm4v_moe_text";
  f.qwen3_mrope =
      starts_with(mt, "qwen3_vl") || starts_with(mt, "qwen3_5") || starts_with(mt, "qwen3_omni");
  f.ernie_vl = starts_with(mt, "ernie4_5_vl");
  f.gpt_oss = mt == "gpt_oss";
  return f;
}

Json parse_json(std::string_view text, const ParseOptions& o) {
  if (text.size() > o.max_bytes)
    throw ConfigError("", "config is " + std::to_string(text.size()) + " bytes; expected at most " +
                              std::to_string(o.max_bytes) + " (a config.json is a few KiB)");
  // Refuse deep nesting before handing the text to the parser (a bracket scan that skips
  // strings), whatever else is wrong with it.
  int depth = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > o.max_depth)
        throw ConfigError("", "JSON nesting deeper than " + std::to_string(o.max_depth) +
                                  " levels; expected a config.json");
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return detail::parse_json_document(text, o.max_depth);
}

// The rope dicts to read, one per layer type, with their JSON paths.
struct RopeDict {
  std::string layer_type;
  Json dict;  // object (possibly empty)
  std::string path;
  std::optional<double> theta_override;  // Gemma 3 sliding layers, DeepSeek-V4
  bool no_scaling = false;
  std::string theta_path;  // where theta_override comes from (default: path)
};

bool all_values_are_objects(const Json& j) {
  if (!j.is_object() || j.empty()) return false;
  return std::all_of(j.begin(), j.end(), [](const Json& v) { return v.is_object(); });
}

std::vector<RopeDict> rope_dicts(const Json& root, const std::string& base, const Family& fam,
                                 std::vector<ConfigWarning>& warnings) {
  const Json* params = detail::find(root, "rope_parameters");
  const Json* scaling = detail::find(root, "rope_scaling");
  if (params && scaling)
    warnings.push_back({join_path(base, "rope_scaling"),
                        "both rope_parameters and rope_scaling are set; rope_parameters wins "
                        "(transformers v5 reads rope_scaling only as a legacy alias)"});
  std::vector<RopeDict> out;
  if (params) {
    const std::string ppath = join_path(base, "rope_parameters");
    if (!params->is_object())
      fail(ppath, "an object (one rope dict, or one per layer type)", *params);
    if (all_values_are_objects(*params)) {
      // Per layer type. Names must be layer types of the model when the config lists them.
      std::set<std::string> known;
      if (const Json* lt = detail::find(root, "layer_types"); lt && lt->is_array())
        for (const auto& v : *lt)
          if (v.is_string()) known.insert(v.get<std::string>());
      for (const auto& [name, d] : params->items()) {
        if (!known.empty() && !known.count(name)) {
          std::string list;
          for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
          throw ConfigError(
              join_path(ppath, name),
              "expected a layer type listed in layer_types (" + list + "), got \"" + name + "\"");
        }
        out.push_back({name, d, join_path(ppath, name), std::nullopt, false, {}});
      }
      return out;
    }
    out.push_back({"default", *params, ppath, std::nullopt, false, {}});
  } else if (scaling) {
    const std::string spath = join_path(base, "rope_scaling");
    if (!scaling->is_object()) fail(spath, "an object or null", *scaling);
    out.push_back({"default", *scaling, spath, std::nullopt, false, {}});
  } else if (fam.gpt_oss) {
    // transformers' GptOssConfig default: YaRN ×32 over 4096 tokens, untruncated ramp.
    warnings.push_back({join_path(base, "rope_scaling"),
                        "absent; using gpt-oss's default YaRN block (factor 32, original 4096, "
                        "beta 32/1, truncate false) as transformers' GptOssConfig does"});
    out.push_back({"default",
                   Json{{"rope_type", "yarn"},
                        {"factor", 32.0},
                        {"beta_fast", 32.0},
                        {"beta_slow", 1.0},
                        {"truncate", false},
                        {"original_max_position_embeddings", 4096}},
                   join_path(base, "rope_scaling"),
                   std::nullopt,
                   false,
                   {}});
  } else {
    out.push_back(
        {"default", Json::object(), join_path(base, "rope_scaling"), std::nullopt, false, {}});
  }
  if (fam.gemma3 && out.size() == 1) {
    // Gemma 3 (legacy layout): the scaling applies to full-attention layers; sliding-window
    // layers use rope_local_base_freq and no scaling (transformers' Gemma3Config).
    RopeDict full = out[0];
    full.layer_type = "full_attention";
    RopeDict sliding{"sliding_attention",
                     Json::object(),
                     join_path(base, "rope_local_base_freq"),
                     get_number(root, "rope_local_base_freq", base).value_or(10000.0),
                     true,
                     {}};
    out = {full, sliding};
  }
  return out;
}

std::string resolve_type(const Json& d, const std::string& path, std::vector<ConfigWarning>& w) {
  const auto rt = get_string(d, "rope_type", path);
  const auto t = get_string(d, "type", path);
  if (rt && t && *rt != *t)
    w.push_back({join_path(path, "type"), "rope_type \"" + *rt + "\" and type \"" + *t +
                                              "\" disagree; rope_type wins (transformers)"});
  if (rt) return detail::canonical_rope_type(*rt, join_path(path, "rope_type"));
  if (t) return detail::canonical_rope_type(*t, join_path(path, "type"));
  return "default";
}

int resolve_head_dim(const Json& root, const std::string& base, const Family& fam) {
  if (fam.deepseek || detail::find(root, "qk_rope_head_dim")) {
    if (const auto r = get_integer(root, "qk_rope_head_dim", base)) {
      detail::check_positive(*r, join_path(base, "qk_rope_head_dim"));
      if (*r > (1 << 20)) fail(join_path(base, "qk_rope_head_dim"), "at most 2^20", Json(*r));
      return static_cast<int>(*r);
    }
  }
  if (const auto h = get_integer(root, "head_dim", base)) {
    if (*h <= 0 || *h > (1 << 20))
      fail(join_path(base, "head_dim"), "an integer in [1, 2^20]", Json(*h));
    return static_cast<int>(*h);
  }
  auto hidden = get_integer(root, "hidden_size", base);
  auto heads = get_integer(root, "num_attention_heads", base);
  std::string hidden_key = "hidden_size", heads_key = "num_attention_heads";
  if (!hidden) {
    hidden = get_integer(root, "n_embd", base);
    hidden_key = "n_embd";
  }
  if (!heads) {
    heads = get_integer(root, "n_head", base);
    heads_key = "n_head";
  }
  if (!hidden || !heads)
    throw ConfigError(join_path(base, "head_dim"),
                      "head_dim is not derivable: expected `head_dim`, or `hidden_size` and "
                      "`num_attention_heads`");
  if (*heads <= 0) fail(join_path(base, heads_key), "an integer > 0", Json(*heads));
  if (*hidden <= 0) fail(join_path(base, hidden_key), "an integer > 0", Json(*hidden));
  if (*hidden % *heads != 0)
    throw ConfigError(join_path(base, hidden_key),
                      "head_dim is not derivable: " + hidden_key + " " + std::to_string(*hidden) +
                          " is not a multiple of " + heads_key + " " + std::to_string(*heads));
  const std::int64_t hd = *hidden / *heads;
  if (hd > (1 << 20)) fail(join_path(base, hidden_key), "head_dim at most 2^20", Json(hd));
  return static_cast<int>(hd);
}

std::optional<MRopeSpec> resolve_mrope(const Json& d, const std::string& dpath, const Json& root,
                                       const std::string& base, const Family& fam, int rotary_dim) {
  const Json* sec = detail::find(d, "mrope_section");
  std::string spath = join_path(dpath, "mrope_section");
  if (!sec) {
    sec = detail::find(root, "mrope_section");
    spath = join_path(base, "mrope_section");
  }
  if (!sec) return std::nullopt;
  // transformers v5's XD-RoPE: NTK-alpha with a 4-entry mrope_section (resolve_xdrope).
  if (sec->is_array() && sec->size() == 4 && d.contains("alpha")) return std::nullopt;
  if (!sec->is_array() || sec->size() != 3)
    fail(spath, "a list of 3 integers (T, H, W pairs)", *sec);
  MRopeSpec m;
  int sum = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    const Json& e = (*sec)[i];
    const std::string p = detail::join_index(spath, i);
    if (!e.is_number_integer() || e.get<std::int64_t>() < 0 || e.get<std::int64_t>() > (1 << 20))
      fail(p, "an integer >= 0", e);
    m.section[i] = static_cast<int>(e.get<std::int64_t>());
    sum += m.section[i];
  }
  bool interleaved_flag = false;
  if (const auto f = get_bool(d, "mrope_interleaved", dpath)) interleaved_flag = *f;
  if (fam.ernie_vl)
    m.assignment = MRopeAssignment::kErnieHw;
  else if (fam.qwen3_mrope || interleaved_flag)
    m.assignment = MRopeAssignment::kInterleavedThw;
  else
    m.assignment = MRopeAssignment::kSections;
  const int pairs = rotary_dim / 2;
  if (m.assignment == MRopeAssignment::kInterleavedThw) {
    // Every pair is T unless claimed by H (k%3==1, k<3h) or W (k%3==2, k<3w); transformers
    // requires the sections to sum to the pair count too.
    if (sum != pairs || 3 * m.section[1] > pairs + 1 || 3 * m.section[2] > pairs + 2)
      throw ConfigError(
          spath, "expected sections summing to rotary_dim/2 = " + std::to_string(pairs) +
                     " with 3·h and 3·w within the pairs, got [" + std::to_string(m.section[0]) +
                     ", " + std::to_string(m.section[1]) + ", " + std::to_string(m.section[2]) +
                     "]");
  } else if (sum != pairs) {
    throw ConfigError(
        spath, "expected sections summing to rotary_dim/2 = " + std::to_string(pairs) + ", got [" +
                   std::to_string(m.section[0]) + ", " + std::to_string(m.section[1]) + ", " +
                   std::to_string(m.section[2]) + "] (sum " + std::to_string(sum) + ")");
  }
  return m;
}

// XD-RoPE: `xdrope_section` (transformers v5 saves it as a 4-entry `mrope_section`).
std::optional<XdRopeSpec> resolve_xdrope(const Json& d, const std::string& dpath, int rotary_dim) {
  const Json* sec = detail::find(d, "xdrope_section");
  std::string spath = join_path(dpath, "xdrope_section");
  if (!sec) {
    sec = detail::find(d, "mrope_section");
    spath = join_path(dpath, "mrope_section");
    if (!sec || !sec->is_array() || sec->size() != 4 || !d.contains("alpha")) return std::nullopt;
  }
  if (!sec->is_array() || sec->empty() || sec->size() > 4)
    fail(spath, "a list of 1 to 4 integers (pairs per position row)", *sec);
  XdRopeSpec x;
  std::int64_t sum = 0;
  for (std::size_t i = 0; i < sec->size(); ++i) {
    const Json& e = (*sec)[i];
    if (!e.is_number_integer() || e.get<std::int64_t>() < 0 || e.get<std::int64_t>() > (1 << 20))
      fail(detail::join_index(spath, i), "an integer >= 0", e);
    x.section.push_back(static_cast<int>(e.get<std::int64_t>()));
    sum += x.section.back();
  }
  if (sum != rotary_dim / 2)
    throw ConfigError(
        spath, "expected sections summing to rotary_dim/2 = " + std::to_string(rotary_dim / 2) +
                   ", got sum " + std::to_string(sum));
  return x;
}

RopeConfig build_layer(const Json& root, const std::string& base, const std::string& model_type,
                       const Family& fam, const RopeDict& rd, std::vector<ConfigWarning>& warnings,
                       int head_dim, std::int64_t max_pos) {
  RopeConfig c;
  c.layer_type = rd.layer_type;
  c.model_type = model_type;
  c.head_dim = head_dim;
  c.max_position_embeddings = max_pos;
  if (!rd.dict.is_object()) fail(rd.path, "an object", rd.dict);
  std::string type = rd.no_scaling ? "default" : resolve_type(rd.dict, rd.path, warnings);

  // rope_theta: the dict's value wins over the top-level one (transformers' setdefault).
  std::optional<double> theta;
  std::string theta_path = join_path(rd.path, "rope_theta");
  if (rd.theta_override) {
    theta = rd.theta_override;
    theta_path = rd.theta_path.empty() ? rd.path : rd.theta_path;
  } else if (const auto t = get_number(rd.dict, "rope_theta", rd.path)) {
    theta = t;
    if (const auto top = get_number(root, "rope_theta", base); top && *top != *t)
      warnings.push_back({theta_path,
                          "rope_theta differs from the top-level rope_theta; the "
                          "rope dict's value wins"});
  } else if (fam.gemma3 && c.layer_type == "sliding_attention" &&
             get_number(root, "rope_local_base_freq", base)) {
    // Gemma 3: local (sliding-window) layers use their own base.
    theta = get_number(root, "rope_local_base_freq", base);
    theta_path = join_path(base, "rope_local_base_freq");
  } else if (const auto top = get_number(root, "rope_theta", base)) {
    theta = top;
    theta_path = join_path(base, "rope_theta");
  } else if (const auto neox = get_number(root, "rotary_emb_base", base)) {
    theta = neox;
    theta_path = join_path(base, "rotary_emb_base");
  } else if (fam.gemma3 && c.layer_type == "full_attention") {
    theta = 1000000.0;  // Gemma3TextConfig default
  } else if (fam.gemma3 && c.layer_type == "sliding_attention") {
    theta = get_number(root, "rope_local_base_freq", base).value_or(10000.0);
  }
  c.rope_theta = detail::check_positive_finite(theta.value_or(10000.0), theta_path);
  if (c.rope_theta <= 1.0)  // theta^(-2i/d) must decrease: a base <= 1 gives no rotation spectrum
    fail(theta_path, "a finite number > 1", Json(c.rope_theta));

  // partial rotary: dict → top level → GPT-NeoX rotary_pct → family default → 1.
  std::optional<double> prf = get_number(rd.dict, "partial_rotary_factor", rd.path);
  std::string prf_path = join_path(rd.path, "partial_rotary_factor");
  if (!prf) {
    prf = get_number(root, "partial_rotary_factor", base);
    prf_path = join_path(base, "partial_rotary_factor");
  }
  if (!prf && fam.gpt_neox) {
    prf = get_number(root, "rotary_pct", base);
    prf_path = join_path(base, "rotary_pct");
  }
  if (!prf && (fam.phi || fam.glm_interleaved || fam.glm_half_prf)) prf = 0.5;
  c.partial_rotary_factor = prf.value_or(1.0);
  if (!(c.partial_rotary_factor > 0.0 && c.partial_rotary_factor <= 1.0))
    fail(prf_path, "a number in (0, 1]", Json(c.partial_rotary_factor));
  // int() truncation, as transformers computes the rotated width.
  c.rotary_dim = static_cast<int>(static_cast<double>(head_dim) * c.partial_rotary_factor);
  if (const auto explicit_rd = get_integer(root, "rotary_dim", base)) {  // phi-msft, ChatGLM
    if (*explicit_rd <= 0 || *explicit_rd > head_dim)
      fail(join_path(base, "rotary_dim"),
           "an integer in [2, head_dim = " + std::to_string(head_dim) + "]", Json(*explicit_rd));
    if (*explicit_rd % 2 != 0)
      fail(join_path(base, "rotary_dim"), "an even number (features rotate in pairs)",
           Json(*explicit_rd));
    c.rotary_dim = static_cast<int>(*explicit_rd);
    c.partial_rotary_factor = static_cast<double>(c.rotary_dim) / head_dim;
  }
  if (type == "proportional") {
    // Gemma 4: the exponent uses head_dim; int(prf·head_dim/2) pairs rotate, the rest get
    // inv_freq 0. The kernel rotates the whole head.
    if (static_cast<int>(c.partial_rotary_factor * head_dim) / 2 < 1)
      fail(prf_path, "a factor leaving at least one rotated pair", Json(c.partial_rotary_factor));
    c.rotary_dim = head_dim;
  }
  if (c.rotary_dim <= 0 || c.rotary_dim % 2 != 0)
    throw ConfigError(prf_path, "rotary width int(head_dim × partial_rotary_factor) = " +
                                    std::to_string(c.rotary_dim) + " (head_dim " +
                                    std::to_string(head_dim) + "); expected an even number > 0");

  // Layout.
  c.layout = PairLayout::kHalf;
  if (fam.llama4 || fam.glm_interleaved || fam.ernie_vl) c.layout = PairLayout::kInterleaved;
  if (fam.deepseek) c.layout = PairLayout::kInterleaved;     // rope_interleave defaults to true
  if (fam.deepseek_v4) c.layout = PairLayout::kInterleaved;  // complex-form RoPE
  if (const auto ri = get_bool(root, "rope_interleave", base))
    c.layout = *ri ? PairLayout::kInterleaved : PairLayout::kHalf;
  if (const auto rt = get_bool(root, "rope_traditional", base))  // mlx-lm's key
    c.layout = *rt ? PairLayout::kInterleaved : PairLayout::kHalf;
  c.hf_rounds_once = fam.llama4 || fam.ernie_vl;

  // Unknown keys in the rope dict: transformers warns, we do too.
  for (const auto& [key, v] : rd.dict.items())
    if (!detail::is_known_rope_key(type, key) &&
        !(fam.ministral3 && key == "llama_4_scaling_beta"))  // read by read_query_scale
      warnings.push_back(
          {join_path(rd.path, detail::excerpt(key)),
           "unrecognized key for rope type \"" + detail::excerpt(type) + "\"; ignored"});

  detail::ScalingContext ctx;
  ctx.path = rd.path;
  ctx.rope_type = type;
  ctx.rotary_dim = c.rotary_dim;
  ctx.max_position_embeddings = max_pos;
  if (fam.phi3)
    ctx.top_level_original_max = get_integer(root, "original_max_position_embeddings", base);
  if (ctx.top_level_original_max)
    detail::check_positive(*ctx.top_level_original_max,
                           join_path(base, "original_max_position_embeddings"));
  ctx.warnings = &warnings;
  c.scaling = detail::parse_scaling(rd.dict, ctx);
  c.mrope = resolve_mrope(rd.dict, rd.path, root, base, fam, c.rotary_dim);
  c.xdrope = resolve_xdrope(rd.dict, rd.path, c.rotary_dim);
  if (c.mrope && c.xdrope)
    throw ConfigError(join_path(rd.path, "xdrope_section"),
                      "expected either mrope_section or xdrope_section, got both");
  return c;
}

// layer_types / sliding_window_pattern / no_rope_layers → per-layer maps.
void read_layer_map(const Json& root, const std::string& base, const Family& fam, ModelRope& m) {
  const auto n_layers = get_integer(root, "num_hidden_layers", base);
  if (const Json* lt = detail::find(root, "layer_types")) {
    const std::string path = join_path(base, "layer_types");
    if (!lt->is_array()) fail(path, "a list of layer type names", *lt);
    if (lt->size() > (1u << 20)) fail(path, "at most 2^20 layers", Json(lt->size()));
    for (std::size_t i = 0; i < lt->size(); ++i) {
      const Json& e = (*lt)[i];
      if (!e.is_string()) fail(detail::join_index(path, i), "a layer type name", e);
      m.layer_types.push_back(e.get<std::string>());
    }
    if (m.layers.size() > 1)
      for (std::size_t i = 0; i < m.layer_types.size(); ++i) {
        bool known = false;
        for (const auto& l : m.layers) known = known || l.layer_type == m.layer_types[i];
        if (!known)
          throw ConfigError(detail::join_index(path, i),
                            "expected one of the rope layer types, got \"" +
                                detail::excerpt(m.layer_types[i]) + "\"");
      }
  } else if (fam.gemma3 && n_layers && *n_layers > 0 && *n_layers <= (1 << 20)) {
    // Gemma 3: every sliding_window_pattern-th layer (default 6) is global.
    const std::int64_t pattern = get_integer(root, "sliding_window_pattern", base).value_or(6);
    if (pattern <= 0)
      fail(join_path(base, "sliding_window_pattern"), "an integer > 0", Json(pattern));
    for (std::int64_t i = 0; i < *n_layers; ++i)
      m.layer_types.push_back((i + 1) % pattern == 0 ? "full_attention" : "sliding_attention");
  }
  const Json* nr = detail::find(root, "no_rope_layers");
  if (fam.nope_interval && (!nr || nr->is_null() || (nr->is_array() && nr->empty()))) {
    // transformers (Llama4TextConfig, SmolLM3Config): a missing or empty no_rope_layers is
    // generated as [(i + 1) % no_rope_layer_interval != 0 for each layer i], interval default 4:
    // layers 3, 7, 11, ... (0-based) attend without positions (NoPE, arXiv:2305.19466).
    const std::int64_t interval = get_integer(root, "no_rope_layer_interval", base).value_or(4);
    if (interval <= 0)
      fail(join_path(base, "no_rope_layer_interval"), "an integer > 0", Json(interval));
    if (n_layers && *n_layers > 0 && *n_layers <= (1 << 20))
      for (std::int64_t i = 0; i < *n_layers; ++i)
        m.layer_uses_rope.push_back((i + 1) % interval != 0);
    return;
  }
  if (nr && !nr->is_null()) {
    const std::string path = join_path(base, "no_rope_layers");
    if (!nr->is_array()) fail(path, "a list of 0/1 flags per layer (1 = RoPE)", *nr);
    if (nr->size() > (1u << 20)) fail(path, "at most 2^20 layers", Json(nr->size()));
    for (std::size_t i = 0; i < nr->size(); ++i) {
      const Json& e = (*nr)[i];
      if (!(e.is_number_integer() || e.is_boolean()) ||
          (e.is_number_integer() && e.get<std::int64_t>() != 0 && e.get<std::int64_t>() != 1))
        fail(detail::join_index(path, i), "0 (NoPE) or 1 (RoPE)", e);
      m.layer_uses_rope.push_back(e.is_boolean() ? e.get<bool>() : e.get<std::int64_t>() == 1);
    }
  }
}

// DeepSeek-V4 (transformers DeepseekV4Config.__post_init__ and DeepseekV4RotaryEmbedding): two
// RoPEs selected per decoder layer. "main" (sliding-window layers, compress ratio 0): plain RoPE
// with rope_theta, no scaling. "compress" (compressed layers, CSA ratio 4 / HCA ratio 128):
// compress_rope_theta (default 160000) with the rope_scaling block, YaRN with attention_factor 1
// (the reference rotates with unit-magnitude cos/sin). transformers v5 saves the two as
// rope_parameters {"main": {...}, "compress": {...}}; both forms are read.
std::vector<RopeDict> deepseek_v4_dicts(const Json& root, const std::string& base) {
  if (const Json* rp = detail::find(root, "rope_parameters");
      rp && rp->is_object() && rp->contains("main") && rp->contains("compress")) {
    const std::string ppath = join_path(base, "rope_parameters");
    std::vector<RopeDict> out;
    for (const char* name : {"main", "compress"}) {
      const Json& d = (*rp)[name];
      if (!d.is_object())
        fail(join_path(ppath, name), "an object (that layer type's rope dict)", d);
      out.push_back({name, d, join_path(ppath, name), std::nullopt, false, {}});
    }
    return out;
  }
  const std::string tpath = join_path(base, "rope_theta");
  const std::string cpath = join_path(base, "compress_rope_theta");
  RopeDict main{"main", Json::object(),
                tpath,  get_number(root, "rope_theta", base).value_or(10000.0),
                true,   tpath};
  Json cd = Json::object();
  const std::string spath = join_path(base, "rope_scaling");
  if (const Json* rs = detail::find(root, "rope_scaling"); rs && !rs->is_null()) {
    if (!rs->is_object()) fail(spath, "an object or null", *rs);
    cd = *rs;
  }
  auto says_yarn = [&](const char* key) {
    const Json* v = detail::find(cd, key);
    return v && v->is_string() && v->get<std::string>() == "yarn";
  };
  if ((says_yarn("rope_type") || says_yarn("type")) && !cd.contains("attention_factor"))
    cd["attention_factor"] = 1.0;
  RopeDict compress{"compress", cd,
                    spath,      get_number(root, "compress_rope_theta", base).value_or(160000.0),
                    false,      cpath};
  return {main, compress};
}

// DeepSeek-V4's per-layer choice, as the layer type of each decoder layer ("main" or
// "compress"): `layer_types` (sliding_attention → main, compressed_sparse_attention and
// heavily_compressed_attention → compress) else `compress_ratios` (0 → main, else compress; the
// list may carry one more entry for the MTP block, which is not a decoder layer).
void read_deepseek_v4_layers(const Json& root, const std::string& base, ModelRope& m) {
  const auto n = get_integer(root, "num_hidden_layers", base);
  if (n && (*n < 0 || *n > (1 << 20)))
    fail(join_path(base, "num_hidden_layers"), "an integer in [0, 2^20]", Json(*n));
  if (const Json* lt = detail::find(root, "layer_types"); lt && !lt->is_null()) {
    const std::string path = join_path(base, "layer_types");
    if (!lt->is_array() || lt->size() > (1u << 20))
      fail(path, "a list of attention types per layer", *lt);
    for (std::size_t i = 0; i < lt->size(); ++i) {
      const Json& e = (*lt)[i];
      const std::string t = e.is_string() ? e.get<std::string>() : std::string();
      if (t == "sliding_attention")
        m.layer_types.push_back("main");
      else if (t == "compressed_sparse_attention" || t == "heavily_compressed_attention")
        m.layer_types.push_back("compress");
      else
        fail(detail::join_index(path, i),
             "sliding_attention, compressed_sparse_attention or heavily_compressed_attention", e);
    }
  } else if (const Json* cr = detail::find(root, "compress_ratios"); cr && !cr->is_null()) {
    const std::string path = join_path(base, "compress_ratios");
    if (!cr->is_array() || cr->size() > (1u << 20))
      fail(path, "a list of compression ratios per layer (0 = sliding window only)", *cr);
    if (n && cr->size() < static_cast<std::size_t>(*n))
      fail(path, "at least num_hidden_layers = " + std::to_string(*n) + " entries",
           Json(cr->size()));
    const std::size_t count = n ? static_cast<std::size_t>(*n) : cr->size();
    for (std::size_t i = 0; i < count; ++i) {
      const Json& e = (*cr)[i];
      if (!e.is_number_integer() || e.get<std::int64_t>() < 0)
        fail(detail::join_index(path, i), "an integer >= 0 (0 = sliding window only)", e);
      m.layer_types.push_back(e.get<std::int64_t>() == 0 ? "main" : "compress");
    }
  }
}

// Llama 4's attention-temperature tuning (transformers Llama4TextAttention): the NoPE layers
// multiply q by 1 + attn_scale · ln(1 + floor((cache_position + 1) / floor_scale)). The config
// class defaults are on, 8192 and 0.1; released configs write attn_temperature_tuning as the
// integer 4, which the model only tests for truth.
void read_query_scale(const Json& root, const std::string& base, const Family& fam, ModelRope& m) {
  if (fam.ministral3) {
    // Ministral 3 (transformers Ministral3Attention, `_get_llama_4_attn_scale`): every layer
    // multiplies its rotated queries by 1 + beta · ln(1 + floor(cache_position /
    // original_max_position_embeddings)), the scale cast to the query dtype first.
    const Json* rd = detail::find(root, "rope_parameters");
    std::string rpath = join_path(base, "rope_parameters");
    if (!rd || !rd->is_object()) {
      rd = detail::find(root, "rope_scaling");
      rpath = join_path(base, "rope_scaling");
    }
    if (!rd || !rd->is_object()) return;
    const auto beta = get_number(*rd, "llama_4_scaling_beta", rpath);
    if (!beta) return;
    if (!std::isfinite(*beta))
      fail(join_path(rpath, "llama_4_scaling_beta"), "a finite number", Json(*beta));
    const auto orig = get_integer(*rd, "original_max_position_embeddings", rpath);
    if (!orig || *orig <= 0)
      throw ConfigError(join_path(rpath, "original_max_position_embeddings"),
                        "expected an integer > 0 (the floor of llama_4_scaling_beta's scale)");
    m.query_scale = QueryPositionScale{static_cast<double>(*orig), *beta, 0, true};
    const auto n = get_integer(root, "num_hidden_layers", base);
    if (n && *n > 0 && *n <= (1 << 20))
      m.layer_scales_queries.assign(static_cast<std::size_t>(*n), true);
    return;
  }
  if (!fam.llama4) return;
  bool on = true;
  const std::string tpath = join_path(base, "attn_temperature_tuning");
  if (const Json* t = detail::find(root, "attn_temperature_tuning"); t && !t->is_null()) {
    if (t->is_boolean())
      on = t->get<bool>();
    else if (t->is_number())
      on = t->get<double>() != 0.0;
    else
      fail(tpath, "a boolean or a number (0 = off)", *t);
  }
  if (!on) return;
  QueryPositionScale q;
  q.position_offset = 1;
  q.floor_scale = get_number(root, "floor_scale", base).value_or(8192.0);
  if (!(std::isfinite(q.floor_scale) && q.floor_scale > 0.0))
    fail(join_path(base, "floor_scale"), "a finite number > 0", Json(q.floor_scale));
  q.attn_scale = get_number(root, "attn_scale", base).value_or(0.1);
  if (!std::isfinite(q.attn_scale))
    fail(join_path(base, "attn_scale"), "a finite number", Json(q.attn_scale));
  m.query_scale = q;
  for (const bool rope : m.layer_uses_rope) m.layer_scales_queries.push_back(!rope);
}

// DeepSeek-V3.2 sparse-attention indexer (reference inference/model.py, class Indexer): its
// heads of index_head_dim features rotate their first qk_rope_head_dim features with the
// model's frequencies, half-split ("rope in indexer is not interleaved") while MLA itself is
// interleaved. GLM-5 (glm_moe_dsa) has the same indexer with its pair layout in the config key
// `indexer_rope_interleave` (vLLM deepseek_v2.py: the indexer's rotary is neox-style unless the
// key is true; GLM-5's configs set it, and its default there is true). Exposed as the role
// "indexer": the main layer's RoPE with the indexer's head width and layout.
void read_indexer_role(const Json& root, const std::string& base, const Family& fam, ModelRope& m) {
  if (!fam.deepseek || m.layers.size() != 1) return;
  const auto ihd = get_integer(root, "index_head_dim", base);
  if (!ihd) return;
  const bool interleaved = get_bool(root, "indexer_rope_interleave", base).value_or(fam.glm_dsa);
  RopeConfig c = m.layers.front();
  if (*ihd < c.rotary_dim || *ihd % 2 != 0 || *ihd > (1 << 20))
    fail(join_path(base, "index_head_dim"),
         "an even number >= qk_rope_head_dim = " + std::to_string(c.rotary_dim), Json(*ihd));
  c.layer_type = "indexer";
  c.head_dim = static_cast<int>(*ihd);
  c.partial_rotary_factor = static_cast<double>(c.rotary_dim) / c.head_dim;
  c.layout = interleaved ? PairLayout::kInterleaved : PairLayout::kHalf;
  m.layers.push_back(c);
}

// vision_config: the vision encoder's 2-D RoPE, as its own layer "vision", for the families
// whose encoder has one (docs/variants.md, "2-D vision RoPE"). Other vision configs add no layer.
void read_vision_layer(const Json& doc, const std::string& model_type, ModelRope& m) {
  const Json* vc = detail::find(doc, "vision_config");
  if (!vc) return;
  const std::string base = "vision_config";
  if (!vc->is_object()) fail(base, "an object", *vc);
  const std::string vmt = get_string(*vc, "model_type", base).value_or("");
  std::optional<Vision2dKind> kind;
  if (vmt == "pixtral" || model_type == "pixtral" || model_type == "mistral3") {
    kind = Vision2dKind::kPixtral;
  } else if (starts_with(model_type, "qwen2_vl") || starts_with(model_type, "qwen2_5_vl") ||
             starts_with(model_type, "qwen3_vl") || model_type == "glm4v") {
    kind = Vision2dKind::kQwenVl;
  } else if (starts_with(model_type, "llama4")) {
    kind = Vision2dKind::kLlama4;
  }
  if (!kind) return;
  // Qwen2-VL names the width embed_dim (its hidden_size is the merger's output) and the heads
  // num_heads; the others use hidden_size / num_attention_heads.
  const char* width_key = detail::find(*vc, "embed_dim") ? "embed_dim" : "hidden_size";
  const char* heads_key = detail::find(*vc, "num_heads") ? "num_heads" : "num_attention_heads";
  const auto width = get_integer(*vc, width_key, base);
  const auto heads = get_integer(*vc, heads_key, base);
  if (!heads || *heads <= 0)
    fail(join_path(base, heads_key), "an integer > 0", heads ? Json(*heads) : Json());
  std::int64_t hd = 0;
  if (const auto explicit_hd = get_integer(*vc, "head_dim", base)) {
    hd = *explicit_hd;
  } else {
    if (!width || *width <= 0 || *width % *heads != 0)
      fail(join_path(base, width_key), "an integer > 0, a multiple of " + std::string(heads_key),
           width ? Json(*width) : Json());
    hd = *width / *heads;
  }
  if (hd <= 0 || hd % 4 != 0 || hd > (1 << 20))
    fail(join_path(base, "head_dim"), "a multiple of 4 (2-D RoPE: two runs of head_dim/4 pairs)",
         Json(hd));
  RopeConfig c;
  c.layer_type = "vision";
  c.model_type = vmt.empty() ? model_type : vmt;
  c.head_dim = static_cast<int>(hd);
  c.rotary_dim = c.head_dim;
  // transformers v5 writes the tower's theta inside vision_config.rope_parameters (Mistral 3).
  std::string theta_path = join_path(base, "rope_theta");
  std::optional<double> theta = get_number(*vc, "rope_theta", base);
  if (const Json* rp = detail::find(*vc, "rope_parameters"); !theta && rp && rp->is_object()) {
    theta = get_number(*rp, "rope_theta", join_path(base, "rope_parameters"));
    theta_path = join_path(base, "rope_parameters.rope_theta");
  }
  c.rope_theta = detail::check_positive_finite(theta.value_or(10000.0), theta_path);
  if (c.rope_theta <= 1.0) fail(theta_path, "a finite number > 1", Json(c.rope_theta));
  // Patches per side, where the config says (image_size / patch_size); else 1.
  const auto image = get_integer(*vc, "image_size", base);
  const auto patch = get_integer(*vc, "patch_size", base);
  c.max_position_embeddings =
      image && patch && *patch > 0 && *image >= *patch ? *image / *patch : 1;
  c.layout = *kind == Vision2dKind::kLlama4 ? PairLayout::kInterleaved : PairLayout::kHalf;
  // Qwen-VL's apply_rotary_pos_emb_vision and Llama 4's complex product compute in float32 and
  // round once; Pixtral rounds cos/sin to the dtype like the text models.
  c.hf_rounds_once = *kind != Vision2dKind::kPixtral;
  c.vision2d = Vision2dSpec{*kind};
  m.layers.push_back(c);
}

}  // namespace

ModelRope parse_hf_config(std::string_view json_text, const ParseOptions& options) {
  const Json doc = parse_json(json_text, options);
  if (!doc.is_object()) fail("", "a JSON object (a config.json)", doc);
  ModelRope m;
  m.model_type = get_string(doc, "model_type", "").value_or("");

  // Multimodal checkpoints keep the language model's fields in text_config.
  const Json* root = &doc;
  std::string base;
  Json merged;
  if (const Json* tc = detail::find(doc, "text_config")) {
    if (!tc->is_object()) fail("text_config", "an object", *tc);
    const bool top_has_rope = detail::find(doc, "rope_scaling") ||
                              detail::find(doc, "rope_parameters") ||
                              detail::find(doc, "rope_theta");
    if (!top_has_rope) {
      merged = *tc;
      root = &merged;
      base = "text_config";
      if (const auto mt = get_string(*tc, "model_type", base);
          mt && !mt->empty() && m.model_type.empty())
        m.model_type = *mt;
    }
  }
  Family fam = family_of(m.model_type);
  // Mistral 3 wrappers: the text tower's own model_type says whether it is Ministral 3.
  if (const auto tmt = get_string(*root, "model_type", base); tmt && *tmt == "ministral3")
    fam.ministral3 = true;
  const int head_dim = resolve_head_dim(*root, base, fam);
  if (head_dim % 2 != 0)
    throw ConfigError(
        join_path(base, "head_dim"),
        "expected an even head_dim (features rotate in pairs), got " + std::to_string(head_dim));
  std::int64_t max_pos = 0;
  if (const auto mp = get_integer(*root, "max_position_embeddings", base)) {
    max_pos = detail::check_positive(*mp, join_path(base, "max_position_embeddings"));
  } else {
    max_pos = fam.gemma3 ? 131072 : 2048;  // the config classes' defaults
    m.warnings.push_back(
        {join_path(base, "max_position_embeddings"),
         "absent; using " + std::to_string(max_pos) + " (the transformers config class default)"});
  }
  for (const RopeDict& rd :
       fam.deepseek_v4 ? deepseek_v4_dicts(*root, base) : rope_dicts(*root, base, fam, m.warnings))
    m.layers.push_back(
        build_layer(*root, base, m.model_type, fam, rd, m.warnings, head_dim, max_pos));
  if (fam.deepseek_v4)
    read_deepseek_v4_layers(*root, base, m);
  else
    read_layer_map(*root, base, fam, m);
  read_query_scale(*root, base, fam, m);
  read_vision_layer(doc, m.model_type, m);
  read_indexer_role(*root, base, fam, m);
  if (options.strict && !m.warnings.empty()) {
    const auto& w = m.warnings.front();
    throw ConfigError(w.path, w.message + " (strict: warnings are errors)");
  }
  return m;
}

ModelRope load_hf_config(const std::filesystem::path& path, const ParseOptions& options) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw IoError("cannot read config " + path.string() + ": is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open config " + path.string());
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > options.max_bytes)
    throw ConfigError("", "config file " + path.string() + " is " + std::to_string(size) +
                              " bytes; expected at most " + std::to_string(options.max_bytes));
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_hf_config(ss.str(), options);
}

}  // namespace ropekit
