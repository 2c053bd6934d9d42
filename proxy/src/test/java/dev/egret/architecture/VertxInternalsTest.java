package dev.egret.architecture;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.Test;

/**
 * Vert.x's internal API (its {@code internal} and {@code impl} packages) changes between minor
 * versions without notice; Egret reaches it through one adapter, {@code
 * dev.egret.runtime.VertxRuntime}, so an upgrade that moves it breaks one class. Runs in {@code
 * mvn verify} over the production classes.
 */
class VertxInternalsTest {
  private static final String ADAPTER = "dev.egret.runtime.VertxRuntime";

  private static final JavaClasses EGRET = new ClassFileImporter()
      .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
      .importPackages("dev.egret");

  @Test
  void onlyTheAdapterUsesVertxInternals() {
    noClasses().that().doNotHaveFullyQualifiedName(ADAPTER)
        .should().dependOnClassesThat().resideInAnyPackage("io.vertx.core.internal..",
            "io.vertx.core.impl..", "io.vertx.core.net.impl..", "io.vertx.core.http.impl..")
        .because("Vert.x internals are reached only through " + ADAPTER)
        .check(EGRET);
  }
}
