#include "sluice/core/http/request.hpp"

#include "sluice/core/http/grammar.hpp"

namespace sluice::http {

namespace {

using grammar::trim_ows;

// The path-and-query part of a target: itself in origin form ("/a?b"); what
// follows the authority in absolute form ("http://h:1/a?b"); empty otherwise.
std::string_view path_and_query(std::string_view t) noexcept {
  if (!t.empty() && t.front() == '/') return t;
  const auto scheme = t.find("://");
  if (scheme == std::string_view::npos) return {};
  const auto slash = t.find('/', scheme + 3);
  return slash == std::string_view::npos ? std::string_view{} : t.substr(slash);
}

}  // namespace

request::header_field request::header(std::size_t i) const noexcept {
  const field_span& f = fields_[i];
  return {view(f.name), trim_ows(view(f.value))};
}

std::optional<std::string_view> request::find(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < header_count_; ++i) {
    if (fields_[i].name.len == name.size() && iequals(view(fields_[i].name), name)) {
      return trim_ows(view(fields_[i].value));
    }
  }
  return std::nullopt;
}

std::string_view request::path() const noexcept {
  std::string_view pq = path_and_query(target());
  return pq.substr(0, pq.find_first_of("?#"));
}

std::string_view request::query() const noexcept {
  std::string_view pq = path_and_query(target());
  const auto q = pq.find('?');
  if (q == std::string_view::npos) return {};
  pq.remove_prefix(q + 1);
  return pq.substr(0, pq.find('#'));
}

}  // namespace sluice::http
