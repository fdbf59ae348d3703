#pragma once
// Control-plane results: a value or an error with a plain-words message.
// Data-path calls do not use this type; they return counts or bools.

#include <string>
#include <system_error>
#include <utility>
#include <variant>

namespace sluice {

// An error for people: what failed, in one line, plus the system error code
// when one exists (so callers can branch on it without parsing text).
struct error {
  std::string message;
  std::error_code code{};

  static error from_errno(int err, std::string what) {
    std::error_code ec(err, std::system_category());
    return error{std::move(what) + ": " + ec.message(), ec};
  }
};

template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::move(value)) {}            // NOLINT: implicit by design
  result(error e) : v_(std::move(e)) {}                // NOLINT
  [[nodiscard]] bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T& operator*() & { return value(); }
  T* operator->() { return &value(); }
  [[nodiscard]] const error& err() const { return std::get<1>(v_); }

 private:
  std::variant<T, error> v_;
};

// result<void>: success or an error.
template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(error e) : err_(std::move(e)), ok_(false) {}  // NOLINT
  [[nodiscard]] bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  [[nodiscard]] const error& err() const { return err_; }

 private:
  error err_;
  bool ok_ = true;
};

}  // namespace sluice
